/** Retries with exponential backoff for transient failures; permanent ones (404, bad JSON, oversize) fail at once. */
import { setTimeout as sleep } from "node:timers/promises";
import { FetchError } from "./errors.ts";

/** Longest wait between two attempts, whatever the attempt number or a server's Retry-After says. */
export const maxBackoffMs = 30_000;

/**
 * Delay before retry number `retry` (0-based): exponential from baseMs, capped at maxBackoffMs, with
 * "equal jitter" (half fixed, half random) so many pods restarting together do not retry in lockstep.
 * A server's Retry-After raises the delay, within the same cap. Pure given `random`.
 */
export function backoffDelayMs(
  retry: number,
  baseMs: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxBackoffMs, baseMs * 2 ** Math.min(retry, 30));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.min(maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0)));
}

/** Parses a Retry-After header (delta-seconds or an HTTP date) into milliseconds from `now`, if valid. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value == null || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface RetryOptions {
  readonly retries: number;
  readonly backoffMs: number;
  /** Aborts the waiting between attempts (the overall deadline). */
  readonly signal: AbortSignal;
  readonly onRetry: (err: FetchError, retry: number, delayMs: number) => void;
}

/**
 * Runs `attempt` until it succeeds, throws a non-retryable error, or `retries` retries are used up;
 * anything that is not a FetchError counts as permanent. The last error is thrown as is.
 */
export async function withRetries<T>(attempt: (n: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!(err instanceof FetchError) || !err.retryable || n >= opts.retries || opts.signal.aborted) throw err;
      const delay = backoffDelayMs(n, opts.backoffMs, err.retryAfterMs);
      opts.onRetry(err, n + 1, delay);
      try {
        await sleep(delay, undefined, { signal: opts.signal });
      } catch {
        throw opts.signal.reason instanceof Error ? opts.signal.reason : err;
      }
    }
  }
}
