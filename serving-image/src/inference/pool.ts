/**
 * A pool of inference worker threads. wasm runs single-threaded in Node, so using more than one core
 * takes one worker (with its own runtime and model copy) per core. Native backends use their own
 * thread pool, so they get a single worker.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { HostTensor } from "../protocol/tensor.ts";
import { transferables, type FromWorker, type ToWorker, type WorkerInit } from "./messages.ts";

export type ReadyInfo = Extract<FromWorker, { type: "ready" }>;

/** What the data plane needs from whatever runs inference. */
export interface InferenceRunner {
  /** Runners free to take a batch now. */
  readonly idle: number;
  /** Runs one batch on an idle runner; rejects with the model's error message. */
  run(inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>>;
  /** Calls `listener` when a runner becomes idle other than by finishing a batch (a replacement joined). */
  onIdle?(listener: () => void): void;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  pending: Map<number, { resolve: (o: Map<string, HostTensor>) => void; reject: (e: Error) => void }>;
  /** Fires when the batch running now has run for `hungAfterMs`. */
  watchdog: NodeJS.Timeout | undefined;
}

/** Why a worker was replaced: it crashed (an uncaught error), exited, or ran one batch for too long. */
export const ReplacementCauses = ["crashed", "exited", "hung"] as const;
export type ReplacementCause = (typeof ReplacementCauses)[number];

export interface PoolEvents {
  /** A worker died unexpectedly or hung (and is being replaced). */
  onWorkerExit?: (reason: string, cause: ReplacementCause) => void;
  /** A replacement worker is ready again, or could not be started. */
  onWorkerRestart?: (error: string | undefined) => void;
  /** No worker is left and the last replacement could not be started: nothing can serve. */
  onExhausted?: (reason: string) => void;
}

const workerUrl = new URL("./worker.ts", import.meta.url);

function spawn(init: WorkerInit): { worker: Worker; ready: Promise<ReadyInfo> } {
  const worker = new Worker(workerUrl, { workerData: init });
  const ready = new Promise<ReadyInfo>((resolve, reject) => {
    const onMessage = (msg: FromWorker): void => {
      if (msg.type === "ready") {
        cleanup();
        resolve(msg);
      } else if (msg.type === "failed") {
        cleanup();
        reject(new Error(msg.reason));
      }
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`inference worker exited with code ${code} while loading`));
    };
    const cleanup = (): void => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
  });
  return { worker, ready };
}

export class WorkerPool implements InferenceRunner {
  readonly #init: WorkerInit;
  readonly #events: PoolEvents;
  readonly #hungAfterMs: number;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closing = false;
  /** Replacement workers still loading the model. */
  #starting = 0;
  #onIdle: () => void = () => undefined;

  private constructor(init: WorkerInit, events: PoolEvents, hungAfterMs: number) {
    this.#init = init;
    this.#events = events;
    this.#hungAfterMs = hungAfterMs;
  }

  /**
   * Starts `count` workers (0 = one per core; always one for native backends). The first worker
   * resolves `auto` to a concrete backend and the rest use it. Rejects with the load failure reason.
   * A worker whose batch runs for `hungAfterMs` is taken to be hung: it is terminated and replaced,
   * and its batch fails.
   */
  static async start(
    init: WorkerInit,
    count: number,
    events: PoolEvents = {},
    hungAfterMs = Infinity,
  ): Promise<{ pool: WorkerPool; ready: ReadyInfo; workers: number }> {
    const first = spawn(init);
    let ready: ReadyInfo;
    try {
      ready = await first.ready;
    } catch (err) {
      await first.worker.terminate();
      throw err;
    }
    const resolved: WorkerInit = { ...init, backend: ready.backend };
    const pool = new WorkerPool(resolved, events, hungAfterMs);
    pool.#adopt(first.worker);
    const native = ready.backend === "tensorflow" || ready.backend === "tensorflow-gpu";
    const wanted = native ? 1 : count > 0 ? count : availableParallelism();
    const rest = Array.from({ length: wanted - 1 }, () => spawn(resolved));
    const results = await Promise.allSettled(rest.map((r) => r.ready));
    for (let i = 0; i < rest.length; i++) {
      const result = results[i]!;
      if (result.status === "fulfilled") pool.#adopt(rest[i]!.worker);
      else await rest[i]!.worker.terminate();
    }
    return { pool, ready, workers: pool.#slots.length };
  }

  get idle(): number {
    let n = 0;
    for (const s of this.#slots) if (!s.busy) n++;
    return n;
  }

  get size(): number {
    return this.#slots.length;
  }

  /** The live worker threads (for diagnostics and tests). */
  get threads(): readonly Worker[] {
    return this.#slots.map((s) => s.worker);
  }

  onIdle(listener: () => void): void {
    this.#onIdle = listener;
  }

  #adopt(worker: Worker): void {
    const slot: Slot = { worker, busy: false, pending: new Map(), watchdog: undefined };
    worker.on("message", (msg: FromWorker) => {
      if (msg.type !== "result" && msg.type !== "error") return;
      const p = slot.pending.get(msg.id);
      if (p === undefined) return;
      slot.pending.delete(msg.id);
      slot.busy = false;
      clearTimeout(slot.watchdog);
      if (msg.type === "result") p.resolve(new Map(msg.outputs));
      else p.reject(new Error(msg.message));
    });
    worker.on("error", (err: Error) => {
      this.#lose(slot, `inference worker crashed: ${err.message}`, "crashed");
    });
    worker.on("exit", (code) => {
      this.#lose(slot, `inference worker exited with code ${code}`, "exited");
    });
    this.#slots.push(slot);
  }

  /** Fails what the dead worker held and starts a replacement, so one crash costs one batch. */
  #lose(slot: Slot, reason: string, cause: ReplacementCause): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    clearTimeout(slot.watchdog);
    for (const p of slot.pending.values()) p.reject(new Error(reason));
    slot.pending.clear();
    if (this.#closing) return;
    this.#events.onWorkerExit?.(reason, cause);
    const replacement = spawn(this.#init);
    this.#starting += 1;
    replacement.ready.then(
      () => {
        this.#starting -= 1;
        if (this.#closing) {
          void replacement.worker.terminate();
          return;
        }
        this.#adopt(replacement.worker);
        this.#events.onWorkerRestart?.(undefined);
        this.#onIdle();
      },
      (err: unknown) => {
        this.#starting -= 1;
        void replacement.worker.terminate();
        const message = err instanceof Error ? err.message : String(err);
        this.#events.onWorkerRestart?.(message);
        if (this.#slots.length === 0 && this.#starting === 0 && !this.#closing) {
          this.#events.onExhausted?.(
            `Every inference worker is gone (${reason}); starting a new one failed: ${message}`,
          );
        }
      },
    );
  }

  run(inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> {
    const slot = this.#slots.find((s) => !s.busy);
    if (slot === undefined) return Promise.reject(new Error("no idle inference worker"));
    slot.busy = true;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      const msg: ToWorker = { type: "run", id, inputs: [...inputs.entries()] };
      try {
        slot.worker.postMessage(msg, transferables(inputs.values()));
      } catch (err) {
        slot.pending.delete(id);
        slot.busy = false;
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (Number.isFinite(this.#hungAfterMs)) {
        slot.watchdog = setTimeout(() => {
          this.#replaceHung(slot);
        }, this.#hungAfterMs);
      }
    });
  }

  /**
   * A worker stuck in one batch never comes back by itself (a model that loops, a wedged native op):
   * fail its batch and start a replacement now, then stop the thread.
   */
  #replaceHung(slot: Slot): void {
    this.#lose(
      slot,
      `the inference worker ran one batch for more than ${this.#hungAfterMs} ms and was replaced`,
      "hung",
    );
    void slot.worker.terminate();
  }

  /** Stops every worker; batches still running are failed. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const s of this.#slots) clearTimeout(s.watchdog);
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    this.#slots.length = 0;
  }
}
