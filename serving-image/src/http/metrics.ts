/**
 * Prometheus metrics of the serving process, named by the contract and stamped with the deployment
 * and namespace they serve, so PromQL does not depend on Prometheus relabeling.
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { MetricLabels, Metrics, Probes } from "../contract.ts";
import type { DataPlaneObserver } from "../dataplane.ts";
import { ReplacementCauses, type ReplacementCause } from "../inference/pool.ts";

export class ServingMetrics implements DataPlaneObserver {
  readonly registry = new Registry();
  readonly requests: Counter<"model" | "protocol" | "code">;
  readonly duration: Histogram<"model" | "protocol">;
  readonly inflight: Gauge;
  readonly queue: Gauge;
  readonly batchSize: Histogram;
  readonly loadSeconds: Gauge;
  readonly backend: Gauge<"backend">;
  readonly modelReady: Gauge;
  readonly workers: Gauge;
  readonly workersReplaced: Counter<"reason">;

  /**
   * `model` is the served name: its request counter and latency histogram are created at zero for
   * both protocols, so Prometheus sees the series from the first scrape. The autoscaler can then
   * tell "no requests" (a rate of 0) from "no data" (no series at all) and hold replicas only on the latter.
   */
  constructor(deployment: string, namespace: string, model?: string) {
    this.registry.setDefaultLabels({ [MetricLabels.deployment]: deployment, [MetricLabels.namespace]: namespace });
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.requests = new Counter({
      name: Metrics.requestsTotal,
      help: "Inference API requests by model, protocol (v1, v2) and HTTP status code.",
      labelNames: [MetricLabels.model, MetricLabels.protocol, MetricLabels.code] as const,
      registers,
    });
    this.duration = new Histogram({
      name: Metrics.requestDurationSeconds,
      help: "Time from request arrival to the end of the response, in seconds.",
      labelNames: [MetricLabels.model, MetricLabels.protocol] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.inflight = new Gauge({
      name: Metrics.inflightRequests,
      help: "Inference API requests being handled.",
      registers,
    });
    this.queue = new Gauge({ name: Metrics.queueDepth, help: "Requests waiting for an inference worker.", registers });
    this.batchSize = new Histogram({
      name: Metrics.batchSize,
      help: "Rows per batch the model ran.",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.loadSeconds = new Gauge({
      name: Metrics.modelLoadSeconds,
      help: "Seconds the model took to load and warm up.",
      registers,
    });
    this.backend = new Gauge({
      name: Metrics.backendInfo,
      help: "The TensorFlow.js backend in use (value 1).",
      labelNames: [MetricLabels.backend] as const,
      registers,
    });
    this.modelReady = new Gauge({
      name: Metrics.modelReady,
      help: "1 when the model serves, 0 while loading, failed or draining.",
      registers,
    });
    this.workers = new Gauge({
      name: Metrics.inferenceWorkers,
      help: "Inference worker threads running the model.",
      registers,
    });
    this.workersReplaced = new Counter({
      name: Metrics.inferenceWorkersReplaced,
      help: "Inference workers replaced, by reason: crashed, exited, or hung (a batch ran far past the request timeout).",
      labelNames: [MetricLabels.reason] as const,
      registers,
    });
    for (const reason of ReplacementCauses) this.workersReplaced.inc({ reason }, 0);
    this.modelReady.set(0);
    if (model !== undefined) {
      for (const protocol of ["v1", "v2"]) {
        this.requests.inc({ model, protocol, code: "200" }, 0);
        this.duration.zero({ model, protocol });
      }
    }
  }

  batch(rows: number): void {
    this.batchSize.observe(rows);
  }

  queueDepth(depth: number): void {
    this.queue.set(depth);
  }

  ready(ready: boolean): void {
    this.modelReady.set(ready ? 1 : 0);
  }

  workerReplaced(cause: ReplacementCause): void {
    this.workers.dec();
    this.workersReplaced.inc({ reason: cause });
  }
}

/** Serves `/metrics` on its own port; everything else is 404. */
export function createMetricsServer(metrics: ServingMetrics): Server {
  return createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== Probes.metrics) {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end(JSON.stringify({ error: `Not found: ${req.method ?? ""} ${req.url ?? ""}` }));
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: unknown) =>
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: String(err) })),
    );
  });
}
