import type { Clock } from "./clock.ts";

/**
 * Decides how long a key waits before its next attempt. Same shape as client-go's
 * workqueue.TypedRateLimiter: `when` is called once per retry and may record state for the key.
 */
export interface RateLimiter {
  /** Delay in milliseconds before `key` may be processed again; counts one more failure for it. */
  when(key: string): number;
  /** Clears the failure history of `key` (call after a success or a terminal error). */
  forget(key: string): void;
  /** How many times `key` has been retried since it was last forgotten. */
  retries(key: string): number;
}

/**
 * Per-key exponential back-off: base·2^failures, capped at max. A key that keeps failing slows
 * down on its own without slowing the others.
 */
export class ItemExponentialBackoff implements RateLimiter {
  readonly #failures = new Map<string, number>();
  readonly #baseMs: number;
  readonly #maxMs: number;

  constructor(baseMs = 5, maxMs = 1_000_000) {
    if (!(baseMs > 0) || !(maxMs >= baseMs)) {
      throw new Error(`ItemExponentialBackoff: need 0 < baseMs <= maxMs, got baseMs=${baseMs} maxMs=${maxMs}`);
    }
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
  }

  when(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    // 2 ** 1024 is Infinity, which Math.min caps; no overflow guard needed.
    return Math.min(this.#baseMs * 2 ** failures, this.#maxMs);
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  retries(key: string): number {
    return this.#failures.get(key) ?? 0;
  }
}

/**
 * Global token bucket (qps, burst), shared by all keys, so a storm of failures cannot turn the
 * operator into a load generator against the API server. Like golang.org/x/time/rate's Reserve:
 * every call takes a token, going into debt when empty, and the returned delay is when that
 * token will exist.
 */
export class TokenBucket implements RateLimiter {
  readonly #clock: Clock;
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(clock: Clock, qps = 10, burst = 100) {
    if (!(qps > 0) || !(burst >= 1)) {
      throw new Error(`TokenBucket: need qps > 0 and burst >= 1, got qps=${qps} burst=${burst}`);
    }
    this.#clock = clock;
    this.#qps = qps;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  when(_key: string): number {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }

  forget(_key: string): void {
    // The bucket is global: forgetting one key does not give tokens back.
  }

  retries(_key: string): number {
    return 0;
  }
}

/** The longest delay of several limiters; all of them record the attempt. */
export class MaxOf implements RateLimiter {
  readonly #limiters: readonly RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    if (limiters.length === 0) throw new Error("MaxOf: needs at least one rate limiter");
    this.#limiters = limiters;
  }

  when(key: string): number {
    // Every limiter must see the attempt (each records state), so no short-circuit here.
    return Math.max(...this.#limiters.map((limiter) => limiter.when(key)));
  }

  forget(key: string): void {
    for (const limiter of this.#limiters) limiter.forget(key);
  }

  retries(key: string): number {
    return Math.max(...this.#limiters.map((limiter) => limiter.retries(key)));
  }
}

/** client-go's default controller rate limiter: 5 ms doubling to 1000 s per key, and 10 qps / burst 100 overall. */
export function defaultControllerRateLimiter(clock: Clock): RateLimiter {
  return new MaxOf(new ItemExponentialBackoff(5, 1_000_000), new TokenBucket(clock, 10, 100));
}
