/** The three kinds of model store: HTTP(S) servers, S3-compatible object stores, and mounted paths. */
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { GetObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { FetchError, describeNetworkError, localError } from "./errors.ts";
import { maxWeightFiles } from "./manifest.ts";
import { parseRetryAfter } from "./retry.ts";
import type { OpenedObject, Source } from "./transfer.ts";
import { redactUri } from "./uri.ts";

/** Status codes worth another attempt; every other 4xx is the caller's mistake and fails at once. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * Reads from an HTTP(S) server. `entryUrl` is fetched exactly as given (query string included, for
 * presigned URLs); other paths resolve against its directory, as TF.js itself resolves weight paths.
 */
export class HttpSource implements Source {
  readonly #entryUrl: URL;
  readonly #entryName: string;
  readonly #authorization: string | undefined;

  /** `entryUrl` never carries credentials (the URI grammar refuses userinfo); `authorization` comes from the Secret. */
  constructor(entryUrl: URL, entryName: string, authorization: string | undefined) {
    this.#entryUrl = entryUrl;
    this.#entryName = entryName;
    this.#authorization = authorization;
  }

  #url(rel: string): URL {
    if (rel === this.#entryName) return this.#entryUrl;
    const base = new URL(".", this.#entryUrl);
    return new URL(rel.split("/").map(encodeURIComponent).join("/"), base);
  }

  describe(rel: string): string {
    return `GET ${redactUri(this.#url(rel).toString())}`;
  }

  async open(rel: string, signal: AbortSignal): Promise<OpenedObject> {
    const what = this.describe(rel);
    const headers: Record<string, string> = { accept: "*/*" };
    if (this.#authorization !== undefined) headers["authorization"] = this.#authorization;
    let res: Response;
    try {
      // fetch drops the Authorization header when a redirect leaves the origin (Fetch standard).
      res = await fetch(this.#url(rel), { headers, signal, redirect: "follow" });
    } catch (err) {
      if (signal.aborted) throw signal.reason as Error;
      // undici wraps network failures in TypeError("fetch failed") with the cause; any other
      // TypeError is a request it refused to build (an invalid header value), which no retry mends.
      const retryable = !(err instanceof TypeError) || err.message === "fetch failed";
      throw new FetchError(`${what}: ${describeNetworkError(err)}`, { retryable, cause: err });
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => undefined);
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
      throw new FetchError(`${what} returned ${res.status} ${res.statusText}`.trimEnd(), {
        retryable: isRetryableStatus(res.status),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    // With a Content-Encoding the length is that of the encoded body, not of what we write.
    const lengthHeader = res.headers.get("content-length");
    const size =
      res.headers.get("content-encoding") === null && lengthHeader !== null ? Number(lengthHeader) : undefined;
    const body = res.body;
    return {
      size: size !== undefined && Number.isSafeInteger(size) ? size : undefined,
      chunks: body,
      cancel: () => {
        // The request's signal is aborted by the caller; cancelling here covers early exits without abort.
        body.cancel().catch(() => undefined);
      },
    };
  }
}

export interface S3Settings {
  readonly region: string | undefined;
  readonly endpoint: string | undefined;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKey: string | undefined;
  readonly sessionToken: string | undefined;
}

/**
 * Reads from S3 or an S3-compatible store (MinIO, Ceph, GCS XML API). Keys come from the environment the
 * operator builds from `credentialsSecretRef`; without keys the SDK's default chain applies (IRSA, instance
 * roles). A custom endpoint implies path-style addressing, which every S3-compatible server accepts.
 */
export class S3Source implements Source {
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #entryName: string;

  constructor(bucket: string, key: string, settings: S3Settings) {
    const slash = key.lastIndexOf("/");
    this.#bucket = bucket;
    this.#prefix = slash < 0 ? "" : key.slice(0, slash + 1);
    this.#entryName = key.slice(slash + 1);
    const credentials =
      settings.accessKeyId !== undefined && settings.secretAccessKey !== undefined
        ? {
            accessKeyId: settings.accessKeyId,
            secretAccessKey: settings.secretAccessKey,
            ...(settings.sessionToken === undefined ? {} : { sessionToken: settings.sessionToken }),
          }
        : undefined;
    this.#client = new S3Client({
      region: settings.region ?? "us-east-1",
      ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint, forcePathStyle: true }),
      ...(credentials === undefined ? {} : { credentials }),
      // Retries are ours (one policy for every store, logged); the SDK would retry silently.
      maxAttempts: 1,
      // Only validate checksums the server offers; S3-compatible stores often offer none.
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  /** The entry object's file name (the last segment of the key). */
  get entryName(): string {
    return this.#entryName;
  }

  describe(rel: string): string {
    return `GET s3://${this.#bucket}/${this.#prefix}${rel}`;
  }

  async open(rel: string, signal: AbortSignal): Promise<OpenedObject> {
    const what = this.describe(rel);
    let out;
    try {
      out = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + rel }), {
        abortSignal: signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason as Error;
      throw s3Error(err, what);
    }
    const body = out.Body;
    if (!(body instanceof Readable)) throw new FetchError(`${what}: the S3 response has no readable body`);
    return {
      size: out.ContentLength,
      chunks: body as AsyncIterable<Uint8Array>,
      cancel: (reason) => body.destroy(reason),
    };
  }

  destroy(): void {
    this.#client.destroy();
  }
}

function s3Error(err: unknown, what: string): FetchError {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode;
    if (status !== undefined) {
      return new FetchError(`${what} returned ${status} ${err.name}`, {
        retryable: isRetryableStatus(status),
        cause: err,
      });
    }
  }
  const name = err instanceof Error ? err.name : "";
  if (name === "CredentialsProviderError") {
    return new FetchError(
      `${what}: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY via credentialsSecretRef)`,
    );
  }
  return new FetchError(`${what}: ${describeNetworkError(err)}`, { retryable: true, cause: err });
}

/** Reads from a local directory: a `file://` path or the mount of a `pvc://` claim. */
export class LocalSource implements Source {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  #path(rel: string): string {
    return join(this.#root, ...rel.split("/"));
  }

  describe(rel: string): string {
    return `read ${this.#path(rel)}`;
  }

  async open(rel: string, signal: AbortSignal): Promise<OpenedObject> {
    const path = this.#path(rel);
    const st = await stat(path).catch((err: unknown) => {
      throw localError(err, `read ${path}`);
    });
    if (!st.isFile()) throw new FetchError(`read ${path}: not a regular file`);
    const stream = createReadStream(path, { signal });
    return { size: st.size, chunks: stream as AsyncIterable<Uint8Array>, cancel: (reason) => stream.destroy(reason) };
  }
}

/**
 * "/"-separated paths of the regular files under root, following symlinks (a claim may hold links), at
 * most 32 levels deep and maxWeightFiles files, leaving out a lost+found at the root. Throws a FetchError naming the path at fault.
 */
export async function listLocalTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    const abs = rel === "" ? root : join(root, ...rel.split("/"));
    if (depth > 32) throw new FetchError(`read ${abs}: directories nested more than 32 levels deep`);
    const names = await readdir(abs).catch((err: unknown) => {
      throw localError(err, `read ${abs}`);
    });
    for (const name of names.sort()) {
      // ext4 volumes carry a root-only lost+found at their root, which fetch (non-root) cannot read
      // and which is never part of a model.
      if (rel === "" && name === "lost+found") continue;
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const st = await stat(join(abs, name)).catch((err: unknown) => {
        throw localError(err, `read ${join(abs, name)}`);
      });
      if (st.isDirectory()) await walk(childRel, depth + 1);
      else if (st.isFile()) {
        out.push(childRel);
        if (out.length > maxWeightFiles) throw new FetchError(`read ${root}: more than ${maxWeightFiles} files`);
      }
    }
  };
  await walk("", 0);
  return out;
}
