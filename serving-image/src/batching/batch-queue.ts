/**
 * The dynamic batcher's queue: pure, clock-injected decisions about which queued requests run together.
 *
 * Requests join along the first dimension only when their `key` (the trailing shapes) is equal; a
 * batch is released when it is full (`maxBatchSize` rows, or the next compatible request would not
 * fit) or when its oldest request has waited `maxDelayMs`. The queue holds at most `maxQueue` requests.
 */

export interface BatchItem {
  /** Rows along the first dimension this request contributes. */
  readonly rows: number;
  /** Requests batch together only with equal keys; `undefined` = never batch this one. */
  readonly key: string | undefined;
  /** Clock reading (ms) when the request was queued. */
  readonly enqueuedAt: number;
}

export interface BatchQueueOptions {
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
}

export type NextBatch<T> =
  | { readonly kind: "batch"; readonly items: readonly T[]; readonly rows: number }
  | { readonly kind: "wait"; readonly until: number }
  | { readonly kind: "empty" };

export class BatchQueue<T extends BatchItem> {
  readonly #options: BatchQueueOptions;
  #items: T[] = [];

  constructor(options: BatchQueueOptions) {
    if (!(options.maxBatchSize >= 1)) throw new Error(`maxBatchSize must be at least 1, got ${options.maxBatchSize}`);
    if (!(options.maxDelayMs >= 0)) throw new Error(`maxDelayMs must be at least 0, got ${options.maxDelayMs}`);
    if (!(options.maxQueue >= 1)) throw new Error(`maxQueue must be at least 1, got ${options.maxQueue}`);
    this.#options = options;
  }

  /** Requests waiting. */
  get depth(): number {
    return this.#items.length;
  }

  get full(): boolean {
    return this.#items.length >= this.#options.maxQueue;
  }

  /** Queues `item`; false (and nothing queued) when the queue is full. */
  offer(item: T): boolean {
    if (this.full) return false;
    this.#items.push(item);
    return true;
  }

  /** Takes `item` out of the queue (a timed-out or cancelled request); false if it was not queued. */
  remove(item: T): boolean {
    const i = this.#items.indexOf(item);
    if (i < 0) return false;
    this.#items.splice(i, 1);
    return true;
  }

  /**
   * Decides what to run at time `now`: a batch (removed from the queue), a time to look again, or
   * nothing. `flush` releases a partial batch without waiting (used while draining).
   */
  next(now: number, flush = false): NextBatch<T> {
    const oldest = this.#items[0];
    if (oldest === undefined) return { kind: "empty" };
    const { maxBatchSize, maxDelayMs } = this.#options;
    const chosen: number[] = [0];
    let rows = oldest.rows;
    let full = rows >= maxBatchSize || oldest.key === undefined;
    if (!full) {
      for (let i = 1; i < this.#items.length; i++) {
        const item = this.#items[i]!;
        if (item.key !== oldest.key) continue;
        if (rows + item.rows > maxBatchSize) {
          full = true;
          break;
        }
        chosen.push(i);
        rows += item.rows;
        if (rows === maxBatchSize) {
          full = true;
          break;
        }
      }
    }
    const due = oldest.enqueuedAt + maxDelayMs;
    if (!full && !flush && now < due) return { kind: "wait", until: due };
    const items = chosen.map((i) => this.#items[i]!);
    const taken = new Set(chosen);
    this.#items = this.#items.filter((_, i) => !taken.has(i));
    return { kind: "batch", items, rows };
  }

  /** Empties the queue, returning what was in it in arrival order. */
  clear(): T[] {
    const items = this.#items;
    this.#items = [];
    return items;
  }
}
