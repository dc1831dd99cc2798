/**
 * The autoscaler's loop (leader only): every tick, for each autoscaled ModelDeployment in the cache,
 * read its metric from Prometheus, ask the recommender, and write the decision to
 * status.autoscaling under its own field manager when it changed. The reconciler then sizes the
 * Deployment from it, so the reconciler stays the only writer of replicas.
 *
 * One tick for every object, not a timer each; evaluations run with bounded concurrency, and an
 * object whose previous evaluation is still running (a slow query) is skipped, never waited for,
 * so it cannot delay the others. State lives in memory while this process leads and is recovered
 * from status when it starts leading, so a restart or a new leader neither resets nor forgets a
 * scale-down delay.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import type { AutoscalingStatus, ModelDeployment } from "../api/index.ts";
import { applyStatus } from "../controller/apply.ts";
import { sleep, type Clock } from "../controller/clock.ts";
import { isNotFound } from "../controller/errors.ts";
import type { EventRecorder } from "../controller/events.ts";
import type { Informer } from "../controller/informer.ts";
import { keyOf } from "../controller/keys.ts";
import type { KubeClient } from "../controller/kube-client.ts";
import type { Logger } from "../controller/log.ts";
import type { OperatorMetrics } from "../controller/metrics.ts";
import { Resources } from "../controller/resources.ts";
import { eventRegarding } from "../reconcile/labels.ts";
import {
  decisionStatus,
  holdingStatus,
  recommenderSpec,
  requestedWindows,
  stateFromStatus,
  worthWriting,
} from "./autoscaling-status.ts";
import { PrometheusError, QueryFailures, type PrometheusClient } from "./prometheus.ts";
import { evaluationQueries, formatMetric } from "./queries.ts";
import { recommend, type RecommenderState } from "./recommender.ts";

/** The field manager of status.autoscaling (the reconciler's status fields have their own). */
export const AUTOSCALER_FIELD_MANAGER = "maas-operator-autoscaler";

export interface AutoscalerOptions {
  client: KubeClient;
  prometheus: PrometheusClient;
  modelDeployments: Informer<ModelDeployment>;
  deployments: Informer<V1Deployment>;
  events: EventRecorder;
  log: Logger;
  clock: Clock;
  metrics?: OperatorMetrics | undefined;
  /** Time between ticks (default 2 s). */
  intervalMs?: number;
  /** Evaluations under way at once (default 8). */
  concurrency?: number;
  /**
   * Shortest range a query may use: `rate` needs at least two samples, so a window shorter than a
   * few scrape intervals of the serving pods is widened to this (default 4 s: 4 × a 1 s scrape).
   */
  minRangeSeconds?: number;
  /**
   * How long the metric may be unreadable before status says Holding (default two ticks): one lost
   * scrape or query is not worth two status writes. Replicas are held from the first failure.
   */
  holdGraceMs?: number;
}

/** What the loop remembers about one object while this process leads. */
interface Tracked {
  uid: string;
  state: RecommenderState;
  /** status.autoscaling as last written (or as found when tracking started). */
  written: AutoscalingStatus | undefined;
  /** When the metric first failed to read in the current run of failures. */
  failingSince?: number | undefined;
}

export class Autoscaler {
  readonly #o: AutoscalerOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Objects no longer autoscaled whose status.autoscaling was cleared, by the resourceVersion seen then. */
  readonly #cleared = new Map<string, string>();
  #slots: number;
  readonly #waiting: (() => void)[] = [];

  constructor(options: AutoscalerOptions) {
    this.#o = options;
    this.#slots = options.concurrency ?? 8;
    if (!(Number.isInteger(this.#slots) && this.#slots >= 1)) {
      throw new Error(`autoscaler concurrency must be a positive integer, got ${this.#slots}`);
    }
  }

  /** Ticks until `signal` aborts, then waits for evaluations under way and forgets its state. */
  async run(signal: AbortSignal): Promise<void> {
    const { modelDeployments, deployments, log, clock } = this.#o;
    await Promise.all([modelDeployments.waitForSync(signal), deployments.waitForSync(signal)]);
    if (!signal.aborted) log.info({ prometheus: this.#o.prometheus.url }, "autoscaler started");
    while (!signal.aborted) {
      this.#tick(signal);
      await sleep(clock, this.#o.intervalMs ?? 2_000, signal);
    }
    await Promise.all(this.#inFlight.values());
    // A later leadership recovers from status, which may have been written by another leader since.
    this.#tracked.clear();
    log.info("autoscaler stopped");
  }

  #tick(signal: AbortSignal): void {
    const seen = new Set<string>();
    const fixedSize = new Set<string>();
    for (const md of this.#o.modelDeployments.list()) {
      if (md.metadata.deletionTimestamp) continue;
      const key = keyOf(md);
      if (!md.spec.autoscaling) {
        // No longer autoscaled: its old decision must not linger in status as if it still applied.
        // Once per version of the object: if another field manager owns the fields, clearing again
        // would only be a write that changes nothing, every tick.
        fixedSize.add(key);
        const version = md.metadata.resourceVersion ?? "";
        if (md.status?.autoscaling && !this.#inFlight.has(key) && this.#cleared.get(key) !== version) {
          this.#cleared.set(key, version);
          this.#start(key, () => this.#clear(md, signal));
        }
        continue;
      }
      seen.add(key);
      if (this.#inFlight.has(key)) {
        this.#o.metrics?.autoscalerEvaluations.inc({ result: "busy" });
        continue;
      }
      this.#start(key, () => this.#evaluate(key, signal));
    }
    for (const key of [...this.#cleared.keys()]) if (!fixedSize.has(key)) this.#cleared.delete(key);
    for (const key of [...this.#tracked.keys()]) {
      if (seen.has(key)) continue;
      this.#tracked.delete(key);
      const [namespace = "", name = ""] = key.split("/");
      this.#o.metrics?.forgetAutoscaled(namespace, name);
      for (const failure of Object.values(QueryFailures)) {
        this.#o.metrics?.autoscalerQueryErrors.remove({ namespace, name, failure });
      }
    }
  }

  /** Runs `work` for `key` when a slot is free; the key counts as in flight until it ends. */
  #start(key: string, work: () => Promise<void>): void {
    const run = this.#withSlot(work)
      .catch((err: unknown) => {
        this.#o.log.error({ object: key, err: errorMessage(err) }, "autoscaler evaluation failed");
      })
      .finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, run);
  }

  /** Removes status.autoscaling (every field this field manager owns) from an object no longer autoscaled. */
  async #clear(md: ModelDeployment, signal: AbortSignal): Promise<void> {
    try {
      await applyStatus(
        this.#o.client,
        Resources.ModelDeployment,
        { namespace: md.metadata.namespace!, name: md.metadata.name! },
        {},
        { fieldManager: AUTOSCALER_FIELD_MANAGER, signal },
      );
    } catch (err) {
      if (!isNotFound(err) && !signal.aborted) {
        this.#o.log.warn({ object: keyOf(md), err: errorMessage(err) }, "clearing status.autoscaling failed");
      }
    }
  }

  async #withSlot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#slots === 0) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#slots -= 1;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#slots += 1;
    }
  }

  /** One object: read the metric, decide, write status if the decision changed, record an Event on a scale. */
  async #evaluate(key: string, signal: AbortSignal): Promise<void> {
    const { modelDeployments, deployments, prometheus, clock, metrics } = this.#o;
    const [namespace = "", name = ""] = key.split("/");
    const md = modelDeployments.get(namespace, name);
    const a = md?.spec.autoscaling;
    if (!md || !a || signal.aborted) return;
    const spec = recommenderSpec(a);
    let tracked = this.#tracked.get(key);
    if (!tracked || tracked.uid !== md.metadata.uid) {
      tracked = { uid: md.metadata.uid ?? "", state: stateFromStatus(md, spec), written: md.status?.autoscaling };
      this.#tracked.set(key, tracked);
    }
    const queries = evaluationQueries(a.metric, namespace, name, requestedWindows(a), this.#o.minRangeSeconds ?? 4);
    const timed = async (window: "stable" | "panic", query: string) => {
      const started = performance.now();
      try {
        return await prometheus.query(query, signal);
      } finally {
        metrics?.autoscalerQueryDuration.observe({ window }, (performance.now() - started) / 1000);
      }
    };
    const [stable, panic] = await Promise.allSettled([
      timed("stable", queries.stable.query),
      timed("panic", queries.panic.query),
    ]);
    if (signal.aborted) return;
    const now = clock.now();
    // A panic window too short for the scrape interval holds no samples; bursts are then judged on
    // the stable window, and status says so. Any other failure of either query holds replicas.
    const panicEmpty = panic.status === "rejected" && isFailure(panic.reason, QueryFailures.empty);
    if (stable.status === "rejected" || (panic.status === "rejected" && !panicEmpty)) {
      const failed: unknown = stable.status === "rejected" ? stable.reason : rejection(panic);
      await this.#hold(key, md, tracked, failed, now, signal);
      return;
    }
    tracked.failingSince = undefined;
    const ready = deployments.get(namespace, name)?.status?.readyReplicas ?? 0;
    const panicValue = panic.status === "fulfilled" ? panic.value : stable.value;
    const decision = recommend(
      spec,
      tracked.state,
      { stable: stable.value, panic: panicValue, kind: queries.stable.kind, ready },
      now,
    );
    tracked.state = decision.state;
    metrics?.autoscalerEvaluations.inc({ result: "decided" });
    metrics?.autoscalerMetric.set({ namespace, name, window: "stable" }, decision.perReplica.stable);
    metrics?.autoscalerMetric.set({ namespace, name, window: "panic" }, decision.perReplica.panic);
    metrics?.autoscalerTarget.set({ namespace, name }, spec.target);
    metrics?.autoscalerDesired.set({ namespace, name }, decision.desired);
    metrics?.autoscalerPanic.set({ namespace, name }, decision.mode === "Panic" ? 1 : 0);
    metrics?.autoscalerHolding.set({ namespace, name }, 0);
    const status = decisionStatus(a.metric.type, spec, decision, queries.windows, panicEmpty, now);
    // The first decision for an object compares with the replicas running, so a first reading
    // that already calls for more pods is a scale like any other (and gets its Event).
    const before = tracked.written?.desiredReplicas ?? deployments.get(namespace, name)?.spec?.replicas;
    if (!(await this.#write(key, md, tracked, status, spec.tolerance, signal))) return;
    if (before !== undefined && before !== decision.desired) {
      const up = decision.desired > before;
      metrics?.autoscalerDecisions.inc({ namespace, name, direction: up ? "up" : "down" });
      const panicking = decision.mode === "Panic";
      const value = panicking ? decision.perReplica.panic : decision.perReplica.stable;
      const window = panicking ? queries.windows.panicSeconds : queries.windows.stableSeconds;
      this.#event(
        md,
        up ? "ScaledUp" : "ScaledDown",
        `Scaled ${before} → ${decision.desired} replicas: ${formatMetric(a.metric.type, value)} per replica over ${window}s, target ${formatMetric(a.metric.type, spec.target)}${panicking ? ", panic" : ""}`,
      );
    }
  }

  /** The metric could not be read: keep the replicas; after the grace period, say so in status. */
  async #hold(
    key: string,
    md: ModelDeployment,
    tracked: Tracked,
    err: unknown,
    now: number,
    signal: AbortSignal,
  ): Promise<void> {
    const { metrics, log } = this.#o;
    const [namespace = "", name = ""] = key.split("/");
    const problem =
      err instanceof PrometheusError
        ? { reason: err.reason, message: err.message, failure: err.failure }
        : {
            reason: "PrometheusUnreachable" as const,
            message: `Prometheus query failed: ${errorMessage(err)}`,
            failure: QueryFailures.unreachable,
          };
    metrics?.autoscalerEvaluations.inc({ result: "holding" });
    metrics?.autoscalerQueryErrors.inc({ namespace, name, failure: problem.failure });
    metrics?.autoscalerHolding.set({ namespace, name }, 1);
    tracked.failingSince ??= now;
    if (now - tracked.failingSince < (this.#o.holdGraceMs ?? 2 * (this.#o.intervalMs ?? 2_000))) return;
    const spec = recommenderSpec(md.spec.autoscaling!);
    const status = holdingStatus(
      md.spec.autoscaling!,
      spec,
      tracked.state,
      tracked.written,
      problem,
      tracked.failingSince,
    );
    if (tracked.written?.mode !== "Holding") {
      log.warn({ object: key, reason: problem.reason, err: problem.message }, "autoscaler holding replicas");
    }
    await this.#write(key, md, tracked, status, spec.tolerance, signal);
  }

  /** Writes status.autoscaling if it is worth it; false when the object is gone or the write failed. */
  async #write(
    key: string,
    md: ModelDeployment,
    tracked: Tracked,
    status: AutoscalingStatus,
    tolerance: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    if (!worthWriting(tracked.written, status, tolerance)) return true;
    try {
      await applyStatus(
        this.#o.client,
        Resources.ModelDeployment,
        { namespace: md.metadata.namespace!, name: md.metadata.name! },
        { autoscaling: status },
        { fieldManager: AUTOSCALER_FIELD_MANAGER, signal },
      );
      tracked.written = status;
      return true;
    } catch (err) {
      if (isNotFound(err)) {
        this.#tracked.delete(key);
      } else if (!signal.aborted) {
        // Not written: the next tick finds the same difference and tries again.
        this.#o.log.warn({ object: key, err: errorMessage(err) }, "writing the autoscaler's decision failed");
      }
      return false;
    }
  }

  /** Written in the background (`EventRecorder.emit`): the next object's evaluation need not wait. */
  #event(md: ModelDeployment, reason: string, note: string): void {
    this.#o.events.emit({
      regarding: eventRegarding(md),
      type: "Normal",
      reason,
      action: "Autoscale",
      note,
    });
  }
}

function isFailure(err: unknown, failure: string): boolean {
  return err instanceof PrometheusError && err.failure === failure;
}

function rejection(r: PromiseSettledResult<unknown>): unknown {
  return r.status === "rejected" ? (r.reason as unknown) : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
