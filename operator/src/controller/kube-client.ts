import { RequestContext, type KubeConfig } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";
import { ApiError } from "./errors.ts";
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
 * The one way the operator talks to the API server: plain fetch with the kubeconfig's TLS client
 * certificate (or token), JSON in and out. We use this rather than client-node's typed APIs so
 * every object stays the server's JSON as-is (the typed APIs turn timestamps into Date objects,
 * while watch events keep strings, so a cache would hold both), every request is counted by verb
 * and code in one place, and apply/merge patches need no per-API content-type workarounds.
 */
export class KubeClient {
  readonly kubeConfig: KubeConfig;
  readonly #server: string;
  readonly #metrics: OperatorMetrics | undefined;
  readonly #timeoutMs: number;
  #dispatcher: Dispatcher | undefined;

  constructor(kubeConfig: KubeConfig, options: { metrics?: OperatorMetrics; timeoutMs?: number } = {}) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster (check current-context)");
    this.kubeConfig = kubeConfig;
    this.#server = cluster.server.replace(/\/+$/, "");
    this.#metrics = options.metrics;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /**
   * Sends one request and returns the parsed JSON body; throws `ApiError` on a non-2xx answer
   * (with the Status reason) and rethrows network errors as they are. Counted by verb and code.
   */
  async request<T>(verb: Verb, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.#server + path);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const method = methodOf[verb];
    const headers = await this.#authHeaders(url, method);
    headers.accept = ContentTypes.json;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["content-type"] = options.contentType ?? ContentTypes.json;
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const started = performance.now();
    let code: number | "error" = "error";
    try {
      const response = await fetch(url, {
        method,
        headers,
        signal,
        ...(body === undefined ? {} : { body }),
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      code = response.status;
      const text = await response.text();
      if (!response.ok) throw apiErrorFrom(verb, path, response.status, text);
      return (text === "" ? undefined : JSON.parse(text)) as T;
    } catch (err) {
      if (err instanceof ApiError || code !== "error") throw err;
      // undici says only "fetch failed"; name the request and the underlying cause (ECONNREFUSED, timeout, TLS).
      throw new Error(`${verb} ${path}: ${describeNetworkError(err)}`, { cause: err });
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
   * Headers from the kubeconfig (bearer token, impersonation) for each request, since token files
   * rotate; the TLS dispatcher (client certificate, CA) is made once and reused, so requests share
   * keep-alive connections instead of a TLS handshake each.
   */
  async #authHeaders(url: URL, method: string): Promise<Record<string, string>> {
    const context = new RequestContext(url.toString(), method as never);
    await this.kubeConfig.applySecurityAuthentication(context);
    this.#dispatcher ??= context.getDispatcher();
    return { ...context.getHeaders() };
  }
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

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.message}${cause}`;
}
