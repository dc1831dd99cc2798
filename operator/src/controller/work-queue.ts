import { realClock, type Clock } from "./clock.ts";
import { defaultControllerRateLimiter, type RateLimiter } from "./rate-limiter.ts";

/** Observations the queue reports; metrics.ts turns them into Prometheus series. All optional. */
export interface WorkQueueMetrics {
  /** Keys waiting to be handed to a worker (not counting delayed or in-flight ones). */
  depth?(depth: number): void;
  /** A key was added (including repeats that deduplicated into a pending one). */
  added?(): void;
  /** Seconds a key waited in the queue between becoming ready and being handed to a worker. */
  waited?(seconds: number): void;
  /** Seconds a worker held a key, from `get` to `done`. */
  worked?(seconds: number): void;
  /** A key was re-added through the rate limiter. */
  retried?(): void;
}

export interface WorkQueueOptions {
  clock?: Clock;
  rateLimiter?: RateLimiter;
  metrics?: WorkQueueMetrics;
}

/**
 * A keyed work queue with client-go's guarantees, in one event loop:
 * - a key waits in the queue at most once (adds of a pending key collapse into it);
 * - a key is never handed to two workers at once: a key added while a worker holds it is marked
 *   dirty and queued again only when that worker calls `done`;
 * - retries go through a rate limiter (per-key back-off combined with a global token bucket);
 * - `addAfter` delays a key; of several delays for the same key the earliest wins.
 * Keys are strings ("namespace/name") because the reconciler reads the current state itself:
 * the queue carries *which* object to look at, never *what* changed.
 */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #metrics: WorkQueueMetrics;

  /** FIFO of keys ready for a worker. Every key in it is also in #dirty. */
  readonly #queue: string[] = [];
  #head = 0;
  /** Keys that need processing: queued, or added while being processed. Value: when it became ready. */
  readonly #dirty = new Map<string, number>();
  /** Keys held by a worker. Value: when it was handed out. */
  readonly #processing = new Map<string, number>();
  /** Delayed keys: when each becomes ready, and the timer's cancel function. */
  readonly #delayed = new Map<string, { readyAt: number; cancel: () => void }>();
  /** Workers blocked in `get`. */
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  /** Resolved when shutting down and no key is held by a worker any more. */
  #drained: (() => void)[] = [];
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? realClock;
    this.#limiter = options.rateLimiter ?? defaultControllerRateLimiter(this.#clock);
    this.#metrics = options.metrics ?? {};
  }

  /** Marks `key` as needing processing. A no-op after shutdown. */
  add(key: string): void {
    if (this.#shuttingDown) return;
    this.#metrics.added?.();
    if (this.#dirty.has(key)) return;
    this.#dirty.set(key, this.#clock.now());
    // A key held by a worker is re-queued by `done`, never handed out twice.
    if (this.#processing.has(key)) return;
    this.#queue.push(key);
    this.#dispatch();
  }

  /** Adds `key` after `delayMs` (now, if not positive). An earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (!(delayMs > 0)) {
      this.add(key);
      return;
    }
    const readyAt = this.#clock.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending && pending.readyAt <= readyAt) return;
    pending?.cancel();
    const cancel = this.#clock.schedule(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { readyAt, cancel });
  }

  /** Adds `key` after the rate limiter's delay for it (at most `maxDelayMs`): the retry path after a transient failure. */
  addRateLimited(key: string, maxDelayMs = Infinity): void {
    if (this.#shuttingDown) return;
    this.#metrics.retried?.();
    this.addAfter(key, Math.min(this.#limiter.when(key), maxDelayMs));
  }

  /** Ends the back-off history of `key`. Call after success or a terminal error; `done` is still required. */
  forget(key: string): void {
    this.#limiter.forget(key);
  }

  /** How often `key` has been retried through `addRateLimited` since it was last forgotten. */
  retries(key: string): number {
    return this.#limiter.retries(key);
  }

  /**
   * The next key to process, waiting until one is ready; `undefined` once the queue shuts down.
   * The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<string | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#take();
    if (key !== undefined) return Promise.resolve(key);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Releases `key` after processing; if it was added meanwhile, it goes back into the queue. */
  done(key: string): void {
    const since = this.#processing.get(key);
    if (since === undefined) return;
    this.#processing.delete(key);
    this.#metrics.worked?.((this.#clock.now() - since) / 1000);
    if (this.#shuttingDown) {
      if (this.#processing.size === 0) this.#resolveDrained();
      return;
    }
    if (this.#dirty.has(key)) {
      // It becomes ready only now; waiting while it was held is not queue wait.
      this.#dirty.set(key, this.#clock.now());
      this.#queue.push(key);
      this.#dispatch();
    }
  }

  /** Number of keys ready and waiting for a worker. */
  get length(): number {
    return this.#queue.length - this.#head;
  }

  /** Keys currently held by workers (for tests and debugging). */
  get inFlight(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Stops the queue: pending and delayed keys are dropped (the next leader relists and sees the
   * same state: keys are level-triggered, nothing is lost), blocked `get`s return `undefined`, and
   * the returned promise resolves once every worker has called `done` for the key it holds.
   */
  shutDownWithDrain(): Promise<void> {
    if (!this.#shuttingDown) {
      this.#shuttingDown = true;
      for (const { cancel } of this.#delayed.values()) cancel();
      this.#delayed.clear();
      this.#queue.length = 0;
      this.#head = 0;
      this.#dirty.clear();
      this.#metrics.depth?.(0);
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
    }
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #resolveDrained(): void {
    for (const resolve of this.#drained.splice(0)) resolve();
  }

  /** Hands ready keys to blocked workers. */
  #dispatch(): void {
    while (this.#waiters.length > 0) {
      const key = this.#take();
      if (key === undefined) break;
      this.#waiters.shift()!(key);
    }
    this.#metrics.depth?.(this.length);
  }

  #take(): string | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const key = this.#queue[this.#head]!;
    this.#head += 1;
    // Compact now and then instead of shifting every time (shift is O(n) on a long queue).
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    const now = this.#clock.now();
    const readySince = this.#dirty.get(key) ?? now;
    this.#dirty.delete(key);
    this.#processing.set(key, now);
    this.#metrics.waited?.((now - readySince) / 1000);
    this.#metrics.depth?.(this.length);
    return key;
  }
}
