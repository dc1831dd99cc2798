/**
 * maas-operator: wires informers, the work queue, the ModelDeployment reconciler, the autoscaler,
 * leader election and the health/metrics server. Every replica keeps warm caches; only the leader
 * runs workers and the autoscaler (and so writes). SIGTERM stops the workers, releases the lease so a standby takes over at once,
 * and exits 0; a lost lease exits 1 at once (another replica may already lead).
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import type { KubernetesObject, V1Deployment, V1Pod, V1Service } from "@kubernetes/client-node";
import { GROUP, KIND, type ModelDeployment } from "./api/index.ts";
import { Autoscaler } from "./autoscaler/autoscaler.ts";
import { PrometheusClient } from "./autoscaler/prometheus.ts";
import { realClock } from "./controller/clock.ts";
import { Controller } from "./controller/controller.ts";
import { EventRecorder } from "./controller/events.ts";
import { startHealthServer } from "./controller/health.ts";
import { Informer, type InformerEvent } from "./controller/informer.ts";
import { controllerOwnerKey, keyOf, labelKey } from "./controller/keys.ts";
import { KubeClient } from "./controller/kube-client.ts";
import { defaultAccess } from "./controller/kubeconfig.ts";
import { LeaderElector } from "./controller/leader-election.ts";
import { createLogger } from "./controller/log.ts";
import { OperatorMetrics } from "./controller/metrics.ts";
import { defaultControllerRateLimiter } from "./controller/rate-limiter.ts";
import { Resources } from "./controller/resources.ts";
import { WorkQueue } from "./controller/work-queue.ts";
import { numberFlag } from "./flags.ts";
import { ModelDeploymentReconciler } from "./model-deployment-reconciler.ts";
import { childForCache, podForStatus, withoutBookkeeping } from "./reconcile/cache-shape.ts";
import { DEFAULT_SERVING_IMAGE } from "./reconcile/desired-deployment.ts";
import { LabelKeys, managedBySelector } from "./reconcile/labels.ts";

/** How long a stopping leader waits for its queued Events before it releases the lease anyway. */
const EVENTS_AT_SHUTDOWN_MS = 5_000;

const { values: flags } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    namespaces: { type: "string", default: process.env.MAAS_WATCH_NAMESPACES ?? "" },
    "leader-election-namespace": { type: "string", default: process.env.POD_NAMESPACE ?? "maas-system" },
    "leader-election-id": { type: "string", default: "maas-operator" },
    "lease-duration-seconds": { type: "string", default: "15" },
    "renew-deadline-seconds": { type: "string", default: "10" },
    "retry-period-seconds": { type: "string", default: "2" },
    "health-port": { type: "string", default: "8081" },
    "serving-image": { type: "string", default: process.env.MAAS_SERVING_IMAGE ?? DEFAULT_SERVING_IMAGE },
    workers: { type: "string", default: "4" },
    "conflict-recheck-seconds": { type: "string", default: "30" },
    // The autoscaler runs only with a Prometheus to ask; without one, autoscaled objects say so.
    "prometheus-url": { type: "string", default: process.env.MAAS_PROMETHEUS_URL ?? "" },
    "prometheus-timeout-seconds": { type: "string", default: "5" },
    // How often Prometheus scrapes the serving pods: query ranges are at least 4 scrape intervals.
    "prometheus-scrape-interval-seconds": { type: "string", default: "1" },
    "autoscaler-interval-seconds": { type: "string", default: "2" },
    "autoscaler-concurrency": { type: "string", default: "8" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
  },
});

/**
 * Enqueue filter for ModelDeployments: spec changes (generation), deletion, and the autoscaler's
 * status (the reconciler turns its decision into Deployment replicas and conditions). The operator's own status writes
 * change none of these, so they do not trigger another pass.
 */
function modelDeploymentTrigger(): (md: ModelDeployment, event: InformerEvent) => boolean {
  const seen = new Map<string, string>();
  return (md, event) => {
    const key = keyOf(md);
    if (event === "delete") {
      seen.delete(key);
      return true;
    }
    // Any write of status.autoscaling (rare: only when the decision changes) is a pass, so the
    // Deployment follows the decision and ScalingActive/ScalingLimited follow the autoscaler.
    const fingerprint = JSON.stringify([
      md.metadata.generation,
      md.metadata.deletionTimestamp ?? "",
      md.status?.autoscaling ?? null,
    ]);
    const changed = seen.get(key) !== fingerprint;
    seen.set(key, fingerprint);
    return event === "add" || changed;
  };
}

/** Every numeric flag, checked before anything starts. */
function numericFlags() {
  const seconds = (
    name:
      | "conflict-recheck-seconds"
      | "lease-duration-seconds"
      | "renew-deadline-seconds"
      | "retry-period-seconds"
      | "prometheus-timeout-seconds"
      | "prometheus-scrape-interval-seconds"
      | "autoscaler-interval-seconds",
  ) => numberFlag(name, flags[name], { min: 0, minInclusive: false }) * 1000;
  return {
    prometheusTimeoutMs: seconds("prometheus-timeout-seconds"),
    scrapeIntervalMs: seconds("prometheus-scrape-interval-seconds"),
    autoscalerIntervalMs: seconds("autoscaler-interval-seconds"),
    autoscalerConcurrency: numberFlag("autoscaler-concurrency", flags["autoscaler-concurrency"], {
      min: 1,
      max: 256,
      integer: true,
    }),
    conflictRecheckMs: seconds("conflict-recheck-seconds"),
    leaseDurationMs: seconds("lease-duration-seconds"),
    renewDeadlineMs: seconds("renew-deadline-seconds"),
    retryPeriodMs: seconds("retry-period-seconds"),
    workers: numberFlag("workers", flags.workers, { min: 1, max: 256, integer: true }),
    healthPort: numberFlag("health-port", flags["health-port"], { min: 0, max: 65535, integer: true }),
  };
}

async function main(): Promise<void> {
  const numbers = numericFlags();
  const log = createLogger(flags["log-level"]);
  const prometheusUrl = (flags["prometheus-url"] ?? "").trim();
  const prometheus = prometheusUrl
    ? new PrometheusClient({ url: prometheusUrl, timeoutMs: numbers.prometheusTimeoutMs })
    : undefined;
  const metrics = new OperatorMetrics().withProcessMetrics();
  const client = new KubeClient(defaultAccess(flags.kubeconfig), { metrics });
  const namespaces = (flags.namespaces ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const identity = `${hostname()}_${randomUUID().slice(0, 8)}`;
  const clock = realClock;
  const informerOptions = { client, namespaces, log, metrics, clock };

  // Each cache keeps only what its readers need (reconcile/cache-shape.ts): one small copy per object.
  const modelDeployments = new Informer<ModelDeployment>({
    ...informerOptions,
    resource: Resources.ModelDeployment,
    transform: withoutBookkeeping,
  });
  // Children caches hold only what we manage, so they stay small however busy the cluster is.
  const deployments = new Informer<V1Deployment>({
    ...informerOptions,
    resource: Resources.Deployment,
    labelSelector: managedBySelector,
    transform: childForCache,
  });
  const services = new Informer<V1Service>({
    ...informerOptions,
    resource: Resources.Service,
    labelSelector: managedBySelector,
    transform: childForCache,
  });
  const pods = new Informer<V1Pod>({
    ...informerOptions,
    resource: Resources.Pod,
    labelSelector: managedBySelector,
    transform: podForStatus,
  });

  const queue = new WorkQueue({
    rateLimiter: defaultControllerRateLimiter(clock),
    metrics: metrics.workQueue("modeldeployment"),
    clock,
  });
  const trigger = modelDeploymentTrigger();
  modelDeployments.onEvent((md, event) => {
    if (trigger(md, event)) queue.add(keyOf(md));
  });
  const byOwner = (obj: KubernetesObject) => {
    const key = controllerOwnerKey(obj, GROUP, KIND);
    if (key) queue.add(key);
  };
  deployments.onEvent(byOwner);
  services.onEvent(byOwner);
  // Pods belong to ReplicaSets, so they map to their ModelDeployment by the selector label.
  pods.onEvent((pod) => {
    const key = labelKey(pod, LabelKeys.deployment);
    if (key) queue.add(key);
  });

  const events = new EventRecorder({
    client,
    controller: "maas.dev/maas-operator",
    instance: identity,
    log,
    metrics,
    clock,
  });
  const reconciler = new ModelDeploymentReconciler({
    client,
    modelDeployments,
    deployments,
    services,
    pods,
    events,
    settings: { servingImage: flags["serving-image"] ?? DEFAULT_SERVING_IMAGE },
    conflictRecheckMs: numbers.conflictRecheckMs,
    autoscalerEnabled: prometheus !== undefined,
    log,
    clock,
  });
  const autoscaler = prometheus
    ? new Autoscaler({
        client,
        prometheus,
        modelDeployments,
        deployments,
        events,
        log,
        clock,
        metrics,
        intervalMs: numbers.autoscalerIntervalMs,
        concurrency: numbers.autoscalerConcurrency,
        minRangeSeconds: (4 * numbers.scrapeIntervalMs) / 1000,
      })
    : undefined;
  const controller = new Controller({
    name: "modeldeployment",
    reconciler,
    queue,
    informers: [modelDeployments, deployments, services, pods],
    workers: numbers.workers,
    log,
    metrics,
    clock,
  });

  const informers = [modelDeployments, deployments, services, pods];
  for (const i of informers) i.start();

  let controllerRun: Promise<void> | undefined;
  const elector = new LeaderElector({
    client,
    namespace: flags["leader-election-namespace"] ?? "maas-system",
    name: flags["leader-election-id"] ?? "maas-operator",
    identity,
    leaseDurationMs: numbers.leaseDurationMs,
    renewDeadlineMs: numbers.renewDeadlineMs,
    retryPeriodMs: numbers.retryPeriodMs,
    log,
    metrics,
    clock,
    // Returning the run lets the elector wait for in-flight reconciles before it releases the
    // lease, so a new leader never overlaps with our last writes.
    onStartedLeading: (signal) => {
      log.info({ identity }, "started leading");
      const fail = (what: string) => (err: unknown) => {
        log.fatal({ err }, `${what} stopped with an error`);
        process.exit(1);
      };
      // Events are written in the background: the last ones land before the lease is released,
      // unless that takes longer than a standby should wait for it.
      controllerRun = Promise.all([
        controller.run(signal).catch(fail("controller")),
        autoscaler?.run(signal).catch(fail("autoscaler")),
      ]).then(() => events.settled(EVENTS_AT_SHUTDOWN_MS));
      return controllerRun;
    },
    onStoppedLeading: (reason) => {
      if (reason === "lost") {
        log.error({ identity }, "lost the leader lease; exiting so a fresh process campaigns again");
        process.exit(1);
      }
    },
    onNewLeader: (holder) => {
      log.info({ holder }, "leader is now " + (holder || "nobody"));
    },
  });

  const health = await startHealthServer({
    port: numbers.healthPort,
    registry: metrics.registry,
    readiness: [
      ...informers.map((i) => ({ name: `informer-${i.resource.plural}`, check: () => i.health() })),
      { name: "leader-election", check: () => elector.health() },
    ],
    log,
  });
  log.info(
    {
      port: health.port,
      identity,
      namespaces: namespaces.length ? namespaces : "all",
      prometheus: prometheus?.url ?? "none: the autoscaler is off",
    },
    "maas-operator started",
  );
  const leading = elector.run();

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down: stopping workers and releasing the lease");
    // Stopping the elector aborts the controller's signal (workers drain), then releases the lease.
    await elector.stop();
    await controllerRun;
    await leading;
    await Promise.all(informers.map((i) => i.stop()));
    await health.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
}

main().catch((err: unknown) => {
  process.stderr.write(`maas-operator failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
