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
