import { readFileSync } from "node:fs";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { ApiError } from "./errors.ts";
import type { ClusterAccess } from "./kubeconfig.ts";
import type { OperatorMetrics } from "./metrics.ts";

/** The verbs we count, in the API server's own vocabulary (apply is a PATCH with an apply patch). */
export type Verb = "get" | "list" | "create" | "update" | "patch" | "apply" | "delete";

const methodOf: Record<Verb, string> = {
  get: "GET",
  list: "GET",
  create: "POST",
  update: "PUT",
  patch: "PATCH",
  apply: "PATCH",
  delete: "DELETE",
};

export const ContentTypes = {
  json: "application/json",
  mergePatch: "application/merge-patch+json",
  applyPatch: "application/apply-patch+yaml",
} as const;
export type ContentType = (typeof ContentTypes)[keyof typeof ContentTypes];

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: ContentType;
  signal?: AbortSignal;
}

/**
 * The one way the operator talks to the API server: node's own HTTP client with the connection's
 * TLS client certificate (or bearer token), JSON in and out, over keep-alive connections. Not
 * client-node's typed APIs: every object stays the server's JSON as-is (the typed APIs turn
 * timestamps into Date objects while watch events keep strings, so a cache would hold both), every
 * request is counted by verb and code in one place, apply/merge patches need no per-API
 * content-type workarounds, and the operator does not load a general client library's generated
 * code (~80 MiB of resident memory) to send a few kinds of request.
 */
export class KubeClient {
  readonly access: ClusterAccess;
  readonly #metrics: OperatorMetrics | undefined;
  readonly #timeoutMs: number;
  readonly #agent: http.Agent;
  readonly #transport: typeof http | typeof https;
  #token: { value: string; readAt: number } | undefined;

  constructor(access: ClusterAccess, options: { metrics?: OperatorMetrics; timeoutMs?: number } = {}) {
    this.access = access;
    this.#metrics = options.metrics;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    const url = new URL(access.server);
    if (url.protocol === "https:") {
      this.#transport = https;
      this.#agent = new https.Agent({
        keepAlive: true,
        ca: access.ca,
        cert: access.cert,
        key: access.key,
        rejectUnauthorized: !access.insecureSkipTlsVerify,
        ...(access.tlsServerName ? { servername: access.tlsServerName } : {}),
      });
    } else if (url.protocol === "http:") {
      this.#transport = http;
      this.#agent = new http.Agent({ keepAlive: true });
    } else {
      throw new Error(`${access.source}: server ${access.server} is not an http(s) URL`);
    }
  }

  /**
   * Sends one request and returns the parsed JSON body; throws `ApiError` on a non-2xx answer
   * (with the Status reason) and an error naming the request on a network failure or timeout.
   * Counted by verb and code.
   */
  async request<T>(verb: Verb, path: string, options: RequestOptions = {}): Promise<T> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { accept: ContentTypes.json };
    if (body !== undefined) headers["content-type"] = options.contentType ?? ContentTypes.json;
    const started = performance.now();
    let code: number | "error" = "error";
    try {
      const response = await this.#send(verb, path, options.query, headers, body, options.signal, this.#timeoutMs);
      code = response.statusCode ?? 0;
      const text = await readText(response, verb, path);
      if (code < 200 || code > 299) throw apiErrorFrom(verb, path, code, text);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    } finally {
      this.#metrics?.apiRequest(verb, code, (performance.now() - started) / 1000);
    }
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>("get", path, signal ? { signal } : {});
  }

  /** Lists a collection; `labelSelector` keeps the answer (and our cache) to the objects we manage. */
  list<T>(path: string, labelSelector?: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>("list", path, { query: { labelSelector }, ...(signal ? { signal } : {}) });
  }

  /**
   * Opens a watch (`?watch=true` plus `query`) and returns the response stream of newline-separated
   * JSON events once the server answered 200; a refusal throws `ApiError` (410 Gone included).
   * `signal` ends the stream. Not counted as a request: a watch is one long answer.
   */
  async openWatch(
    path: string,
    query: Readonly<Record<string, string | undefined>>,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    const response = await this.#send(
      "list",
      path,
      { ...query, watch: "true" },
      { accept: ContentTypes.json },
      undefined,
      signal,
    );
    const code = response.statusCode ?? 0;
    if (code === 200) return response;
    throw apiErrorFrom("watch", path, code, await readText(response, "watch", path));
  }

  #send(
    verb: Verb,
    path: string,
    query: Readonly<Record<string, string | undefined>> | undefined,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal | undefined,
    timeoutMs?: number,
  ): Promise<IncomingMessage> {
    const url = new URL(this.access.server + path);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const token = this.#bearerToken();
    if (token) headers["authorization"] = `Bearer ${token}`;
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
    const signals = [signal, timeout].filter((s) => s !== undefined);
    const combined = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.#transport.request(url, {
        method: methodOf[verb],
        headers,
        agent: this.#agent,
        ...(combined ? { signal: combined } : {}),
      });
      req.on("response", resolve);
      req.on("error", (err) => {
        // Node says only "The operation was aborted" or "connect ECONNREFUSED …": name the request.
        const why = timeout?.aborted ? `timed out after ${timeoutMs} ms` : err.message;
        reject(new Error(`${verb} ${path}: ${why}`, { cause: err }));
      });
      req.end(body);
    });
  }

  /** The bearer token, if any: a fixed one, or the token file read again at most once a minute (tokens rotate). */
  #bearerToken(): string | undefined {
    const { token, tokenFile } = this.access;
    if (token) return token;
    if (!tokenFile) return undefined;
    const now = Date.now();
    if (!this.#token || now - this.#token.readAt > 60_000) {
      this.#token = { value: readFileSync(tokenFile, "utf8").trim(), readAt: now };
    }
    return this.#token.value;
  }

  /** Closes idle keep-alive connections (open watches end through their own signals). */
  close(): void {
    this.#agent.destroy();
  }
}

async function readText(response: IncomingMessage, verb: string, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response) chunks.push(chunk as Buffer);
  } catch (err) {
    throw new Error(`${verb} ${path}: reading the answer: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return Buffer.concat(chunks).toString("utf8");
}

interface Status {
  kind?: string;
  reason?: string;
  message?: string;
  code?: number;
}

function apiErrorFrom(verb: string, path: string, statusCode: number, text: string): ApiError {
  let status: Status = {};
  try {
    status = JSON.parse(text) as Status;
  } catch {
    // Not a Status object (a proxy's HTML page, say): keep the raw text as the message.
  }
  const reason = status.kind === "Status" && status.reason ? status.reason : "";
  const message = status.kind === "Status" && status.message ? status.message : text.slice(0, 500);
  return new ApiError(verb, path, statusCode, reason, message);
}
