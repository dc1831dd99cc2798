import { realClock, type Clock } from "./clock.ts";
import { classifyError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { ReconcileResults, type OperatorMetrics, type ReconcileResultLabel } from "./metrics.ts";
import { parseKey, type ObjectKey, type Reconciler } from "./reconciler.ts";
import type { WorkQueue } from "./work-queue.ts";

/** What the controller needs from an informer: whether its cache is complete. */
export interface SyncSource {
  hasSynced(): boolean;
  waitForSync(signal?: AbortSignal): Promise<boolean>;
}

export interface ControllerOptions {
  /** Names the controller in logs and metrics, e.g. "modeldeployment". */
  name: string;
  reconciler: Reconciler;
  queue: WorkQueue;
  /** Every informer the reconciler reads; workers start only when all have synced. */
  informers: readonly SyncSource[];
  /** Concurrent workers (different keys in parallel; a key never in two). Default 2. */
  workers?: number;
  /**
   * Called after a terminal error (PermanentError, or an invalid request) for the key, once; it
   * records the condition and a Warning Event on the object. Its own failures are logged.
   */
  onTerminalError?: (key: ObjectKey, error: unknown) => Promise<void>;
  log: Logger;
  metrics?: OperatorMetrics;
  clock?: Clock;
}

/**
 * Runs N workers over a work queue: waits for the caches, then takes keys one by one, calls the
 * reconciler, and maps its outcome to the queue (see `Reconciler` for the contract):
 * done → forget; requeueAfter → forget, add after the delay; retry → add rate-limited (or after
 * the error's delay); conflict → the same, logged at debug; terminal → forget and call `onTerminalError`.
 */
export class Controller {
  readonly #o: ControllerOptions;
  readonly #clock: Clock;

  constructor(options: ControllerOptions) {
    if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1)) {
      throw new Error(`controller ${options.name}: workers must be a positive integer, got ${options.workers}`);
    }
    this.#o = options;
    this.#clock = options.clock ?? realClock;
  }

  /**
   * Waits for every informer to sync, runs the workers until `signal` aborts, then stops the
   * queue, waits for in-flight reconciles to finish, and returns.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { name, queue, informers, log } = this.#o;
    const workers = this.#o.workers ?? 2;
    log.info({ controller: name }, "waiting for caches to sync");
    await Promise.all(informers.map((informer) => informer.waitForSync(signal)));
    const stopped = new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else
        signal.addEventListener(
          "abort",
          () => {
            resolve();
          },
          { once: true },
        );
    });
    if (!signal.aborted) {
      log.info({ controller: name, workers }, "caches synced; starting workers");
    }
    const running = signal.aborted ? [] : Array.from({ length: workers }, () => this.#worker(signal));
    await stopped;
    log.info({ controller: name, inFlight: queue.inFlight }, "stopping: draining in-flight reconciles");
    await queue.shutDownWithDrain();
    await Promise.all(running);
    log.info({ controller: name }, "stopped");
  }

  async #worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.#o.queue.get();
      if (key === undefined) return;
      await this.#process(key, signal);
    }
  }

  /** One key, one reconcile, one queue decision. Never throws: a lost exception here would be a dead worker. */
  async #process(key: string, signal: AbortSignal): Promise<void> {
    const { name, queue, reconciler, log, metrics } = this.#o;
    const started = this.#clock.now();
    const keyLog = log.child({ controller: name, object: key });
    let result: ReconcileResultLabel = ReconcileResults.done;
    try {
      let objectKey: ObjectKey;
      try {
        objectKey = parseKey(key);
      } catch (err) {
        result = ReconcileResults.terminal;
        queue.forget(key);
        keyLog.error({ err: errorMessage(err) }, "dropping an invalid key (a handler bug)");
        return;
      }
      try {
        const outcome = await reconciler.reconcile(objectKey, signal);
        queue.forget(key);
        if (outcome.kind === "requeueAfter") {
          result = ReconcileResults.requeueAfter;
          queue.addAfter(key, outcome.delayMs);
        }
      } catch (err) {
        const disposition = classifyError(err);
        if (disposition.action === "terminal") {
          result = ReconcileResults.terminal;
          queue.forget(key);
          keyLog.error(
            { err: errorMessage(err), reason: disposition.reason },
            "reconcile failed permanently; not retrying",
          );
          await this.#reportTerminal(objectKey, err, keyLog);
        } else if (signal.aborted) {
          // Shutting down: the next leader starts from a relist, nothing to requeue.
          keyLog.debug({ err: errorMessage(err) }, "reconcile aborted by shutdown");
        } else {
          result = disposition.quiet ? ReconcileResults.conflict : ReconcileResults.retry;
          const retries = queue.retries(key);
          if (disposition.delayMs === undefined) queue.addRateLimited(key, disposition.maxDelayMs);
          else queue.addAfter(key, disposition.delayMs);
          if (disposition.quiet) keyLog.debug({ err: errorMessage(err) }, "conflict; retrying");
          else
            keyLog.warn(
              { err: errorMessage(err), retries, stack: stackOf(err) },
              "reconcile failed; retrying with back-off",
            );
        }
      }
    } finally {
      queue.done(key);
      metrics?.reconciles.inc({ controller: name, result });
      metrics?.reconcileDuration.observe({ controller: name }, (this.#clock.now() - started) / 1000);
    }
  }

  async #reportTerminal(key: ObjectKey, err: unknown, keyLog: Logger): Promise<void> {
    try {
      await this.#o.onTerminalError?.(key, err);
    } catch (hookErr) {
      keyLog.error({ err: errorMessage(hookErr) }, "recording a terminal error on the object failed");
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Stack traces only for errors we did not anticipate (not our typed ones, not API answers). */
function stackOf(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  return ["TemporaryError", "ApiError"].includes(err.name) ? undefined : err.stack;
}
