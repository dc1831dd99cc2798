/**
 * What the autoscaler suites share: a model on a loopback store, ModelDeployments whose serving pods
 * run as real processes on the local node, and a timeline of what the object and its Deployment
 * said over time, sampled while a test drives load.
 */
import { join } from "node:path";
import type { V1Deployment } from "@kubernetes/client-node";
import type { Autoscaling, ModelDeployment, ModelDeploymentSpec } from "../../../operator/src/api/index.ts";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { LoadGenerator } from "../../testbed/load.ts";
import { startModelStore, type ModelStore } from "../../testbed/model-store.ts";
import { installCrd, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { localNodeName, localNodeTaint } from "../../testbed/nodes.ts";
import { servingSelector } from "../../../operator/src/autoscaler/queries.ts";
import { Metrics } from "../../../serving-image/src/contract.ts";
import { readMd } from "../operator/helpers.ts";
import { saveHalfPlusThree, tempDir } from "../serving/fixtures.ts";

export const SERVED_NAME = "half";
/** One row per request: y = 0.5·x + 3. */
export const PREDICT_BODY = JSON.stringify({ instances: [1.0] });

/** Runs the serving pods as real processes on the test bed's local node. */
export const onLocalNode = {
  nodeSelector: { "kubernetes.io/hostname": localNodeName },
  tolerations: [{ key: localNodeTaint.key, operator: "Exists" as const, effect: "NoSchedule" as const }],
};

/** A loopback model store holding TF Serving's half_plus_three as a TF.js graph model. */
export async function halfPlusThreeStore(): Promise<{ store: ModelStore; uri: string }> {
  const root = await tempDir("maas-autoscaler-store-");
  await saveHalfPlusThree(join(root, "half", "1"));
  const store = await startModelStore(root);
  return { store, uri: `${store.url}/half/1/model.json` };
}

/**
 * An autoscaled spec of small replicas (100m CPU, one inference worker) with windows short enough
 * for a test: stable 10 s, panic 3 s (widened to 4 s, four 1 s scrapes), scale-down delay 15 s.
 */
export function autoscaledSpec(
  uri: string,
  autoscaling: Partial<Autoscaling> & Pick<Autoscaling, "metric">,
  serving: ModelDeploymentSpec["serving"] = {},
): Partial<ModelDeploymentSpec> & Pick<ModelDeploymentSpec, "model"> {
  return {
    model: { uri, format: "tfjs-graph", servedName: SERVED_NAME, version: "1" },
    resources: { cpu: "100m", memory: "256Mi" },
    serving: { backend: "cpu", workers: 1, ...serving },
    scheduling: onLocalNode,
    autoscaling: {
      minReplicas: 1,
      maxReplicas: 4,
      stableWindowSeconds: 10,
      panicWindowSeconds: 3,
      scaleDownDelaySeconds: 15,
      ...autoscaling,
    },
  };
}

/** The flags that point an operator under test at the test bed's Prometheus. */
export function autoscalerArgs(tb: Testbed): string[] {
  return [`--prometheus-url=${tb.prometheusUrl!}`, "--prometheus-scrape-interval-seconds=1"];
}

/** Sends `rate(ms)` predict requests per second to a ModelDeployment's Ready pods (not started yet). */
export function halfLoad(tb: Testbed, namespace: string, deployment: string, rate: (ms: number) => number) {
  return new LoadGenerator({ tb, namespace, deployment, servedName: SERVED_NAME, body: PREDICT_BODY, rate });
}

/** What an autoscaler suite shares: the full test bed with Prometheus, a namespace, the model, an operator. */
export interface AutoscalerBed {
  tb: Testbed;
  ns: string;
  uri: string;
  op: OperatorProcess;
  /** Load generators and timelines to stop after each test. */
  running: { stop(): unknown }[];
}

/**
 * Registers the suite's hooks: before all, the test bed, a namespace, the model store and an
 * operator with its autoscaler scoped to the namespace; after each test, the load stops; after all,
 * everything goes, the namespace too (its serving processes leave the local node).
 */
export function autoscalerBed(tag: string): AutoscalerBed {
  const bed = { running: [] as { stop(): unknown }[] } as AutoscalerBed;
  let store: ModelStore;
  before(async function () {
    this.timeout(600_000);
    bed.tb = await useTestbed("full", { prometheus: true });
    await installCrd(bed.tb);
    bed.ns = await bed.tb.createNamespace(tag);
    ({ store, uri: bed.uri } = await halfPlusThreeStore());
    bed.op = await startOperator(bed.tb, { name: tag, args: [`--namespaces=${bed.ns}`, ...autoscalerArgs(bed.tb)] });
  });
  afterEach(async function () {
    for (const r of bed.running.splice(0)) await r.stop();
  });
  after(async function () {
    await bed.op.stop();
    await store.close();
    await bed.tb.core.deleteNamespace({ name: bed.ns });
  });
  return bed;
}

export interface Sample {
  /** Milliseconds since the timeline started. */
  t: number;
  desired: number | undefined;
  mode: string | undefined;
  /** The Deployment's spec.replicas and status.readyReplicas. */
  replicas: number | undefined;
  ready: number;
  scalingActive: string | undefined;
  md: ModelDeployment;
}

/** Samples a ModelDeployment and its Deployment every `everyMs` until stopped. */
export class Timeline {
  readonly samples: Sample[] = [];
  readonly started = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  readonly tb: Testbed;
  readonly namespace: string;
  readonly name: string;

  constructor(tb: Testbed, namespace: string, name: string, everyMs = 250) {
    this.tb = tb;
    this.namespace = namespace;
    this.name = name;
    this.#timer = setInterval(() => {
      void this.#sample();
    }, everyMs);
  }

  async #sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const [md, d] = await Promise.all([
        readMd(this.tb, this.namespace, this.name),
        this.tb.apps.readNamespacedDeployment({ namespace: this.namespace, name: this.name }).catch(() => undefined),
      ]);
      this.samples.push({
        t: Date.now() - this.started,
        desired: md.status?.autoscaling?.desiredReplicas,
        mode: md.status?.autoscaling?.mode,
        replicas: d?.spec?.replicas,
        ready: d?.status?.readyReplicas ?? 0,
        scalingActive: md.status?.conditions?.find((c) => c.type === "ScalingActive")?.status,
        md,
      });
    } catch {
      // A failed read is a missing sample, not a failed test.
    } finally {
      this.#busy = false;
    }
  }

  now(): number {
    return Date.now() - this.started;
  }

  /** Samples taken in [from, to). */
  between(from: number, to = Infinity): Sample[] {
    return this.samples.filter((s) => s.t >= from && s.t < to);
  }

  /** Waits until a sample taken after `after` satisfies `pred`; returns it. */
  async waitFor(what: string, pred: (s: Sample) => boolean, timeoutMs: number, after = this.now()): Promise<Sample> {
    return this.tb.waitFor(what, () => Promise.resolve(this.samples.find((s) => s.t >= after && pred(s))), timeoutMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Seconds, to one decimal, for the log lines tests print about what they measured. */
export const seconds = (ms: number) => (ms / 1000).toFixed(1);

/**
 * When the recommendations fell below `level` for good: the time of the first entry after the last
 * one at or above it (earlier low entries, e.g. from before a scale-up, do not count). Undefined
 * while the latest recommendation is still at or above `level`.
 */
export function lowerSince(md: ModelDeployment, level: number): number | undefined {
  const history = md.status?.autoscaling?.recommendations ?? [];
  let last = -1;
  history.forEach((r, i) => {
    if (r.replicas >= level) last = i;
  });
  const first = history[last + 1];
  return first ? Date.parse(first.time) : undefined;
}

/**
 * The Deployment the operator would render for `spec`, as a plain Deployment no ModelDeployment owns:
 * what a user scaling the serving image with KEDA or an HPA would run.
 */
export function plainServingDeployment(
  namespace: string,
  name: string,
  spec: Partial<ModelDeploymentSpec> & Pick<ModelDeploymentSpec, "model">,
): V1Deployment {
  const md: ModelDeployment = {
    apiVersion: "maas.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name, namespace, uid: "none" },
    spec: { ...withoutAutoscaling(spec), replicas: 1 },
  };
  const d = desiredDeployment(md, { servingImage: "maas-serving:test" });
  delete d.metadata.ownerReferences;
  return d;
}

function withoutAutoscaling<T extends { autoscaling?: unknown }>(spec: T): Omit<T, "autoscaling"> {
  const { autoscaling: _autoscaling, ...rest } = spec;
  return rest;
}

/**
 * A KEDA ScaledObject scaling the plain Deployment `name` with KEDA's Prometheus scaler: the same
 * query maas's autoscaler runs for RequestsPerSecond over `windowSeconds`, as an AverageValue target,
 * so the HPA asks for ceil(value / target). `behavior` is passed to the HPA KEDA creates.
 */
export function prometheusScaledObject(
  tb: Testbed,
  namespace: string,
  name: string,
  o: {
    windowSeconds: number;
    target: number;
    maxReplicas: number;
    pollingInterval: number;
    behavior?: Record<string, unknown>;
  },
): Record<string, unknown> {
  const query = `sum(rate(${Metrics.requestsTotal}${servingSelector(namespace, name)}[${o.windowSeconds}s]))`;
  return {
    apiVersion: "keda.sh/v1alpha1",
    kind: "ScaledObject",
    metadata: { name, namespace },
    spec: {
      scaleTargetRef: { name },
      minReplicaCount: 1,
      maxReplicaCount: o.maxReplicas,
      pollingInterval: o.pollingInterval,
      ...(o.behavior ? { advanced: { horizontalPodAutoscalerConfig: { behavior: o.behavior } } } : {}),
      triggers: [
        { type: "prometheus", metadata: { serverAddress: tb.prometheusUrl!, query, threshold: String(o.target) } },
      ],
    },
  };
}
