/**
 * The protocol-neutral data plane: model state, version resolution, admission (bounded queue,
 * deadlines), dynamic batching and splitting results back per request. Both REST protocols call it.
 */
import { AdmissionControl, queueFull, type Admission } from "./admission.ts";
import { BatchQueue, type BatchItem } from "./batching/batch-queue.ts";
import type { InferenceRunner } from "./inference/pool.ts";
import { ErrorCodes, ServingError, invalidArgument } from "./protocol/errors.ts";
import type { ModelInfo, ModelRef, ModelState } from "./protocol/model-info.ts";
import { concatRows, sliceRows, type HostTensor, type ModelSignature } from "./protocol/tensor.ts";

export interface DataPlaneOptions {
  readonly name: string;
  readonly version: string;
  readonly maxBatchSize: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly requestTimeoutMs: number;
  /** Bytes of request bodies admitted at once (see admission.ts); unset: no limit. */
  readonly bodyMemoryBytes?: number;
  /** Bodies one client address may be sending at once; unset or 0: no limit. */
  readonly maxBodiesPerClient?: number;
  readonly observer?: DataPlaneObserver;
  /** Injected clock in milliseconds (defaults to performance.now). */
  readonly now?: () => number;
}

export interface DataPlaneObserver {
  batch(rows: number): void;
  queueDepth(depth: number): void;
  ready(ready: boolean): void;
}

interface Pending extends BatchItem {
  readonly inputs: ReadonlyMap<string, HostTensor>;
  readonly resolve: (outputs: Map<string, HostTensor>) => void;
  readonly reject: (err: ServingError) => void;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
}

/** What resolving a request's model reference found. */
export type Resolution = "ok" | "unknown-model" | "unknown-version" | "unknown-label";

export class DataPlane {
  readonly #options: DataPlaneOptions;
  readonly #now: () => number;
  readonly #queue: BatchQueue<Pending>;
  #state: ModelState = "LOADING";
  #reason = "Loading the model";
  #platform = "";
  #signature: ModelSignature | undefined;
  #batchable = false;
  #runner: InferenceRunner | undefined;
  readonly #admission: AdmissionControl;
  #accepted = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #drained: (() => void)[] = [];

  constructor(options: DataPlaneOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#queue = new BatchQueue({
      maxBatchSize: options.maxBatchSize,
      maxDelayMs: options.maxDelayMs,
      maxQueue: options.maxQueue,
    });
    this.#admission = new AdmissionControl(
      {
        maxQueue: options.maxQueue,
        bodyMemoryBytes: options.bodyMemoryBytes ?? Infinity,
        maxBodiesPerClient: options.maxBodiesPerClient ?? 0,
      },
      () => this.#queue.depth,
    );
  }

  info(): ModelInfo {
    return {
      name: this.#options.name,
      version: this.#options.version,
      platform: this.#platform,
      state: this.#state,
      reason: this.#reason,
      signature: this.#signature,
    };
  }

  get ready(): boolean {
    return this.#state === "AVAILABLE";
  }

  /** Requests accepted and not yet answered (queued or running). */
  get accepted(): number {
    return this.#accepted;
  }

  /** Makes the model AVAILABLE once loaded and warmed up. */
  attach(runner: InferenceRunner, platform: string, signature: ModelSignature, batchable: boolean): void {
    if (this.#state !== "LOADING") return;
    this.#runner = runner;
    // Queued requests go to a worker that comes back now, not when the next request arrives.
    runner.onIdle?.(() => {
      this.#pump();
    });
    this.#platform = platform;
    this.#signature = signature;
    this.#batchable = batchable;
    this.#state = "AVAILABLE";
    this.#reason = "";
    this.#options.observer?.ready(true);
  }

  /** Records that the model could not be loaded; the server stays up and reports `reason`. */
  fail(reason: string): void {
    this.#state = "END";
    this.#reason = reason;
    this.#options.observer?.ready(false);
  }

  /** Matches a request's name/version/label against the served model. */
  resolve(ref: ModelRef): Resolution {
    if (ref.name !== this.#options.name) return "unknown-model";
    if (ref.label !== undefined) return "unknown-label";
    if (ref.version !== undefined && ref.version !== this.#options.version) return "unknown-version";
    return "ok";
  }

  /** Throws 503 unless the model serves, so callers can refuse before reading a request body. */
  assertAvailable(): ModelSignature {
    if (this.#state === "UNLOADING") {
      throw new ServingError(ErrorCodes.unavailable, "The server is shutting down; retry on another replica", 1);
    }
    if (this.#state !== "AVAILABLE" || this.#signature === undefined) {
      throw new ServingError(
        ErrorCodes.unavailable,
        `Model '${this.#options.name}' is not ready: ${this.#reason}`,
        this.#state === "END" ? undefined : 1,
      );
    }
    return this.#signature;
  }

  /**
   * Admits a request from its headers, before its body is read (see admission.ts): `declaredBytes`
   * is its Content-Length (undefined for a chunked body), `client` its sender's address. Throws 413
   * or 429 when it cannot be admitted; the caller releases the admission once the request is answered.
   */
  admit(declaredBytes?: number, client?: string): Admission {
    return this.#admission.admit(declaredBytes, client);
  }

  /**
   * Runs one request (inputs already validated against the signature), batched with others when
   * possible; `admission` is what `admit()` reserved, if the caller took it; `cancel` aborts
   * when the client goes away (a queued request then leaves the queue). Rejects with 429 when the
   * queue is full, 504 past the deadline, 499 when cancelled while queued, 500 when inference fails.
   */
  infer(
    inputs: ReadonlyMap<string, HostTensor>,
    admission?: Admission,
    cancel?: AbortSignal,
  ): Promise<Map<string, HostTensor>> {
    const signature = this.assertAvailable();
    // The request's own reserved slot becomes its queue entry.
    admission?.enqueued();
    if (cancel?.aborted)
      return Promise.reject(new ServingError(ErrorCodes.cancelled, "The client closed the connection"));
    const dims = signature.inputs.map((s) => inputs.get(s.name)?.shape[0]);
    signature.inputs.forEach((s, i) => {
      if (dims[i] === 0 && s.shape !== null && s.shape[0] === -1)
        throw invalidArgument(`Input '${s.name}' has 0 rows; send at least one`);
    });
    const rows = dims[0];
    const sameRows = rows !== undefined && dims.every((d) => d === rows);
    const key =
      this.#batchable && sameRows
        ? signature.inputs.map((s) => inputs.get(s.name)!.shape.slice(1).join("x")).join(";")
        : undefined;
    return new Promise((resolve, reject) => {
      const item: Pending = {
        rows: sameRows ? rows : 1,
        key,
        enqueuedAt: this.#now(),
        inputs,
        resolve,
        reject,
        settled: false,
        timer: undefined,
      };
      if (!this.#queue.offer(item)) {
        reject(queueFull(this.#options.maxQueue));
        return;
      }
      this.#accepted++;
      item.timer = setTimeout(() => {
        const queued = this.#queue.remove(item);
        this.#settle(item, () => {
          reject(
            new ServingError(
              ErrorCodes.deadlineExceeded,
              `Request timed out after ${this.#options.requestTimeoutMs} ms ${queued ? "waiting in the queue" : "while the model ran it"}`,
            ),
          );
        });
        this.#pump();
      }, this.#options.requestTimeoutMs);
      // A client that went away gives its queue slot back; a batch already running finishes.
      cancel?.addEventListener(
        "abort",
        () => {
          if (!this.#queue.remove(item)) return;
          this.#settle(item, () => {
            reject(new ServingError(ErrorCodes.cancelled, "The client closed the connection"));
          });
          this.#pump(); // updates the queue depth gauge
        },
        { once: true },
      );
      this.#pump();
    });
  }

  /** Stops admitting requests and resolves when every accepted request has been answered. */
  drain(): Promise<void> {
    if (this.#state === "AVAILABLE" || this.#state === "LOADING") {
      this.#state = "UNLOADING";
      this.#reason = "The server is shutting down";
      this.#options.observer?.ready(false);
    }
    this.#pump();
    if (this.#accepted === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #settle(item: Pending, answer: () => void): void {
    if (item.settled) return;
    item.settled = true;
    clearTimeout(item.timer);
    this.#accepted--;
    answer();
    if (this.#accepted === 0 && this.#drained.length > 0) {
      for (const done of this.#drained.splice(0)) done();
    }
  }

  #pump(): void {
    const runner = this.#runner;
    if (runner !== undefined) {
      const flush = this.#state === "UNLOADING";
      while (runner.idle > 0) {
        const next = this.#queue.next(this.#now(), flush);
        if (next.kind === "empty") break;
        if (next.kind === "wait") {
          this.#wakeAt(next.until);
          break;
        }
        this.#dispatch(runner, next.items, next.rows);
      }
    }
    this.#options.observer?.queueDepth(this.#queue.depth);
  }

  #wakeAt(until: number): void {
    if (this.#timer !== undefined && this.#timerAt <= until) return;
    clearTimeout(this.#timer);
    this.#timerAt = until;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        this.#pump();
      },
      Math.max(0, until - this.#now()),
    );
  }

  #dispatch(runner: InferenceRunner, items: readonly Pending[], rows: number): void {
    // Whatever goes wrong with one batch answers that batch's requests with 500; it must never
    // escape into #pump's callers (timers, promise callbacks), where it would end the process.
    const fail = (err: unknown): void => {
      const e = new ServingError(
        ErrorCodes.internal,
        `Inference failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      for (const item of items)
        this.#settle(item, () => {
          item.reject(e);
        });
    };
    const signature = this.#signature!;
    const batch = new Map<string, HostTensor>();
    try {
      for (const s of signature.inputs) batch.set(s.name, concatRows(items.map((i) => i.inputs.get(s.name)!)));
    } catch (err) {
      fail(err);
      return;
    }
    this.#options.observer?.batch(rows);
    runner
      .run(batch)
      .then((outputs) => {
        if (items.length === 1) {
          this.#settle(items[0]!, () => {
            items[0]!.resolve(outputs);
          });
          return;
        }
        for (const [name, t] of outputs) {
          if (t.shape[0] !== rows) {
            const err = new ServingError(
              ErrorCodes.internal,
              `Output '${name}' has ${t.shape[0] ?? "no"} rows for a batch of ${rows}`,
            );
            for (const item of items)
              this.#settle(item, () => {
                item.reject(err);
              });
            return;
          }
        }
        let offset = 0;
        for (const item of items) {
          const mine = new Map<string, HostTensor>();
          for (const [name, t] of outputs) mine.set(name, sliceRows(t, offset, offset + item.rows));
          offset += item.rows;
          this.#settle(item, () => {
            item.resolve(mine);
          });
        }
      }, fail)
      .catch(fail)
      .finally(() => {
        this.#pump();
      });
  }
}
