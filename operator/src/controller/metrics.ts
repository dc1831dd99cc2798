import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WorkQueueMetrics } from "./work-queue.ts";

/** How a reconcile ended; the label values of maas_operator_reconcile_total. */
export const ReconcileResults = {
  done: "done",
  requeueAfter: "requeue_after",
  retry: "retry",
  conflict: "conflict",
  terminal: "terminal",
} as const;
export type ReconcileResultLabel = (typeof ReconcileResults)[keyof typeof ReconcileResults];

/**
 * The operator's own Prometheus metrics, in one registry (not prom-client's global one, so tests
 * and two components in one process never collide). Names are snake_case with units.
 */
export class OperatorMetrics {
  readonly registry = new Registry();

  readonly reconciles = new Counter({
    name: "maas_operator_reconcile_total",
    help: "Reconciles by controller and result (done, requeue_after, retry, conflict, terminal).",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });
  readonly reconcileDuration = new Histogram({
    name: "maas_operator_reconcile_duration_seconds",
    help: "Time spent in one reconcile, by controller.",
    labelNames: ["controller"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly queueDepth = new Gauge({
    name: "maas_operator_workqueue_depth",
    help: "Keys ready and waiting for a worker.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: "maas_operator_workqueue_adds_total",
    help: "Keys added to the work queue (including adds that deduplicated into a pending key).",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: "maas_operator_workqueue_queue_duration_seconds",
    help: "Time a key waited in the queue before a worker took it.",
    labelNames: ["name"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly queueWork = new Histogram({
    name: "maas_operator_workqueue_work_duration_seconds",
    help: "Time a worker held a key.",
    labelNames: ["name"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: "maas_operator_workqueue_retries_total",
    help: "Keys re-added through the rate limiter after a failure.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });

  readonly apiRequests = new Counter({
    name: "maas_operator_api_requests_total",
    help: "Requests to the Kubernetes API server by verb and HTTP code ('error' when no response arrived).",
    labelNames: ["verb", "code"] as const,
    registers: [this.registry],
  });
  readonly apiRequestDuration = new Histogram({
    name: "maas_operator_api_request_duration_seconds",
    help: "Latency of requests to the Kubernetes API server, by verb.",
    labelNames: ["verb"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly watchRestarts = new Counter({
    name: "maas_operator_watch_restarts_total",
    help: "Informer watch restarts by resource and reason (error: the watch or list failed; expired: 410 Gone, relisted; stale: no sign of life, restarted).",
    labelNames: ["resource", "reason"] as const,
    registers: [this.registry],
  });
  readonly informerSynced = new Gauge({
    name: "maas_operator_informer_synced",
    help: "1 when the informer for a resource has listed and is watching, 0 otherwise.",
    labelNames: ["resource"] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: "maas_operator_leader",
    help: "1 while this replica holds the leader Lease, 0 while it stands by.",
    labelNames: ["lease"] as const,
    registers: [this.registry],
  });
  readonly leaderTransitions = new Counter({
    name: "maas_operator_leader_transitions_total",
    help: "Times this replica started or stopped leading.",
    labelNames: ["lease", "transition"] as const,
    registers: [this.registry],
  });

  readonly events = new Counter({
    name: "maas_operator_events_total",
    help: "Kubernetes Events recorded, by type and action: created (a new Event), counted (a repeat counted into an existing one), failed (the API server refused or failed), dropped (too many were waiting to be written).",
    labelNames: ["type", "action"] as const,
    registers: [this.registry],
  });

  readonly autoscalerEvaluations = new Counter({
    name: "maas_operator_autoscaler_evaluations_total",
    help: "Autoscaler evaluations by result (decided: the metric was read; holding: it could not be; busy: skipped because the previous evaluation of the object was still running).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly autoscalerDecisions = new Counter({
    name: "maas_operator_autoscaler_scale_decisions_total",
    help: "Changes of a ModelDeployment's desired replicas made by the autoscaler, by direction (up, down).",
    labelNames: ["namespace", "name", "direction"] as const,
    registers: [this.registry],
  });
  readonly autoscalerQueryDuration = new Histogram({
    name: "maas_operator_autoscaler_query_duration_seconds",
    help: "Latency of the autoscaler's Prometheus queries, by window (stable, panic).",
    labelNames: ["window"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly autoscalerQueryErrors = new Counter({
    name: "maas_operator_autoscaler_query_errors_total",
    help: "Autoscaler queries that gave no usable number, by object and failure (unreachable, http_error, query_error, empty, multiple_series, not_a_number, non_finite, negative, bad_response).",
    labelNames: ["namespace", "name", "failure"] as const,
    registers: [this.registry],
  });
  readonly autoscalerMetric = new Gauge({
    name: "maas_operator_autoscaler_metric_value",
    help: "The autoscaling metric per ready replica at the last evaluation, by object and window (stable, panic).",
    labelNames: ["namespace", "name", "window"] as const,
    registers: [this.registry],
  });
  readonly autoscalerTarget = new Gauge({
    name: "maas_operator_autoscaler_metric_target",
    help: "The autoscaling target per replica, by object.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });
  readonly autoscalerDesired = new Gauge({
    name: "maas_operator_autoscaler_desired_replicas",
    help: "Replicas the autoscaler wants for a ModelDeployment.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });
  readonly autoscalerPanic = new Gauge({
    name: "maas_operator_autoscaler_panic",
    help: "1 while the autoscaler is in panic mode for a ModelDeployment, else 0.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });
  readonly autoscalerHolding = new Gauge({
    name: "maas_operator_autoscaler_holding",
    help: "1 while the autoscaler holds a ModelDeployment's replicas because its metric cannot be read, else 0.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  /** Drops every autoscaler series of an object that is gone or no longer autoscaled. */
  forgetAutoscaled(namespace: string, name: string): void {
    for (const gauge of [this.autoscalerDesired, this.autoscalerPanic, this.autoscalerHolding, this.autoscalerTarget]) {
      gauge.remove({ namespace, name });
    }
    for (const window of ["stable", "panic"]) this.autoscalerMetric.remove({ namespace, name, window });
    for (const direction of ["up", "down"]) this.autoscalerDecisions.remove({ namespace, name, direction });
  }

  /** Adds Node's process metrics (memory, CPU, event-loop lag) — the operator's footprint at scale. */
  withProcessMetrics(): this {
    collectDefaultMetrics({ register: this.registry, prefix: "maas_operator_" });
    return this;
  }

  /** Hooks for one named work queue. */
  workQueue(name: string): WorkQueueMetrics {
    return {
      depth: (depth) => {
        this.queueDepth.set({ name }, depth);
      },
      added: () => {
        this.queueAdds.inc({ name });
      },
      waited: (seconds) => {
        this.queueWait.observe({ name }, seconds);
      },
      worked: (seconds) => {
        this.queueWork.observe({ name }, seconds);
      },
      retried: () => {
        this.queueRetries.inc({ name });
      },
    };
  }

  /** Records one API request. */
  apiRequest(verb: string, code: number | "error", seconds: number): void {
    this.apiRequests.inc({ verb, code: String(code) });
    this.apiRequestDuration.observe({ verb }, seconds);
  }
}
