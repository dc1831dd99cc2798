/**
 * The one error type of `fetch`. Its message is what the user reads in the pod status (after the
 * "model fetch failed: " prefix), so it names the object and the problem and never carries a secret.
 */
export class FetchError extends Error {
  /** True for failures a later attempt may not repeat: 5xx, 408, 429, resets, timeouts, truncated bodies. */
  readonly retryable: boolean;
  /** Seconds the server asked us to wait (Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: { retryable?: boolean; retryAfterMs?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "FetchError";
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Exit codes of `maas-serving fetch`. */
export const ExitCodes = {
  ok: 0,
  /** The model could not be fetched or verified. */
  failed: 1,
  /** The environment is unusable (bad URI, bad number, missing variable). */
  badConfig: 2,
} as const;

/** A short human text for a network error, preferring the errno code of its cause chain. */
export function describeNetworkError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    const text = typeof code === "string" && !cur.message.includes(code) ? `${cur.message} (${code})` : cur.message;
    if (text !== "" && text !== "fetch failed" && !parts.includes(text)) parts.push(text);
    cur = cur.cause;
  }
  if (parts.length === 0) return err instanceof Error ? err.message || err.name : String(err);
  return parts.join(": ").replace(/\bterminated: /, "connection closed before the body was complete: ");
}

/** A FetchError for a failed local file operation; local failures are never retried. */
export function localError(err: unknown, what: string): FetchError {
  const code = (err as { code?: unknown }).code;
  const reasons: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    ENOTDIR: "not a directory",
    EISDIR: "is a directory",
    EROFS: "read-only file system",
    ENOSPC: "no space left on device",
    EEXIST: "file exists",
  };
  const text = typeof code === "string" ? (reasons[code] ?? code) : describeNetworkError(err);
  return new FetchError(`${what}: ${text}`, { cause: err });
}
