/**
 * `npm run bench:operator`: on the real test bed (full mode), how fast the operator turns 500
 * ModelDeployments into children and observed status, side by side with the API server's limit on
 * this machine — the same HTTP client creating the same 1,000 child objects directly, by POST (as
 * the operator creates a new child) and by server-side apply — and the
 * operator's memory with all of it in its caches. Writes bench/results/operator.json and prints a
 * markdown table. A benchmark, not a test: it fails only when something never converges.
 *
 * Then the memory phase: a fresh operator process takes over the cluster and ModelDeployments are
 * added until it holds BENCH_MEMORY_STEPS (default 1000,2000) of them, each with its Deployment,
 * Service and Pod; at each step, once every one is Ready, it reports the operator's RSS and V8 heap,
 * and for each kind the JSON bytes of an object as the API server serves it and as the operator's
 * cache keeps it (after its transform).
 *
 * Environment: BENCH_MDS (default 500), BENCH_CONCURRENCY (client requests in flight, default 32),
 * BENCH_OPERATOR_WORKERS (the operator's --workers, default 4), BENCH_TIMEOUT_SECONDS (per phase,
 * default 240), BENCH_MEMORY_STEPS (default 1000,2000; empty to skip), BENCH_MEMORY_ONLY=1 (skip the
 * timed phases; writes bench/results/operator-memory.json), BENCH_OPERATOR_NODE_OPTIONS (NODE_OPTIONS for the operator processes, e.g. V8 flags),
 * BENCH_ROUNDS (default 1): the direct creates and the operator phase run that many times in turn;
 * the report details the round with the median ratio and lists every round's figures, so one
 * invocation shows the run-to-run spread. BENCH_BASELINE_DIR=<dir> (a checkout of another revision
 * with a node_modules link, e.g. a `git worktree`) also runs that checkout's operator in every round,
 * alternately before and after this one's, and lists its figures beside them; BENCH_BASELINE_WORKERS
 * (default BENCH_OPERATOR_WORKERS) is its --workers, so one checkout can be run against itself to
 * compare worker counts.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Watch } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ModelDeployment } from "../../../operator/src/api/index.ts";
import { applyObject, type ApplyObject } from "../../../operator/src/controller/apply.ts";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { collectionPath, Resources, type Resource } from "../../../operator/src/controller/resources.ts";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { desiredService } from "../../../operator/src/reconcile/desired-service.ts";
import { childForCache, podForStatus, withoutBookkeeping } from "../../../operator/src/reconcile/cache-shape.ts";
import { managedBySelector } from "../../../operator/src/reconcile/labels.ts";
import { fakeNode } from "../../testbed/nodes.ts";
import { stopTestbed, useTestbed, type Testbed } from "../../testbed/index.ts";
import { installCrd, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";

const count = Number(process.env["BENCH_MDS"] ?? "500");
const concurrency = Number(process.env["BENCH_CONCURRENCY"] ?? "32");
const operatorWorkers = Number(process.env["BENCH_OPERATOR_WORKERS"] ?? "4"); // the operator's default
const phaseTimeoutMs = Number(process.env["BENCH_TIMEOUT_SECONDS"] ?? "240") * 1000;
const memoryOnly = process.env["BENCH_MEMORY_ONLY"] === "1";
const rounds = Number(process.env["BENCH_ROUNDS"] ?? "1");
const baselineDir = process.env["BENCH_BASELINE_DIR"];
const baselineWorkers = Number(process.env["BENCH_BASELINE_WORKERS"] ?? String(operatorWorkers));
const operatorNodeOptions = process.env["BENCH_OPERATOR_NODE_OPTIONS"];
const operatorEnv = operatorNodeOptions ? { env: { NODE_OPTIONS: operatorNodeOptions } } : {};
const memorySteps = (process.env["BENCH_MEMORY_STEPS"] ?? "1000,2000")
  .split(",")
  .filter((s) => s.trim() !== "")
  .map(Number);
const servingImage = "maas-serving:test"; // what startOperator passes as --serving-image
// CPU only, so the pods land on the kwok CPU node. The default requests (1 CPU, 2Gi) would fit only
// 64 pods on its 64 CPUs; 100m and 256Mi fit all 500 (50 CPUs, 125Gi) so every ModelDeployment can
// become Ready.
const spec = {
  model: { uri: "https://models.example.com/m/model.json", format: "tfjs-graph" as const },
  replicas: 1,
  resources: { cpu: "100m", memory: "256Mi" },
};

const log = (msg: string): void => {
  process.stderr.write(`[bench:operator] ${msg}\n`);
};

interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; generation?: number };
  spec?: unknown;
  status?: Record<string, unknown>;
}

interface Latency {
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

function latency(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return { p50Ms: round(at(0.5)), p95Ms: round(at(0.95)), maxMs: round(sorted.at(-1) ?? NaN) };
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure stops the run. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
}

const names = Array.from({ length: count }, (_, i) => `m${String(i).padStart(4, "0")}`);

/** A ModelDeployment as the API server would hand it to the operator, for the builders only. */
function fakeModelDeployment(namespace: string, name: string, index: number): ModelDeployment {
  const uid = `00000000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace, uid, generation: 1 }, spec };
}

/**
 * The two children the operator would apply for one ModelDeployment, minus the owner reference (its
 * made-up owner does not exist, so the garbage collector would delete them at once).
 */
function childrenOf(namespace: string, name: string, index: number, replicas: number): KubeObject[] {
  const md = fakeModelDeployment(namespace, name, index);
  const deployment = desiredDeployment(md, { servingImage });
  delete deployment.metadata.ownerReferences;
  deployment.spec!.replicas = replicas;
  const service = desiredService(md);
  delete service.metadata.ownerReferences;
  return [deployment as KubeObject, service as KubeObject];
}

/**
 * A watch on one namespaced collection that calls `onObject` for every ADDED/MODIFIED object from
 * `resourceVersion` on, and resumes (or relists after 410 Gone) until stopped.
 */
class CollectionWatch {
  readonly #tb: Testbed;
  readonly #client: KubeClient;
  readonly #path: string;
  readonly #onObject: (obj: KubeObject) => void;
  #resourceVersion = "";
  #abort: AbortController | undefined;
  #stopped = false;
  restarts = 0;

  constructor(tb: Testbed, client: KubeClient, path: string, onObject: (obj: KubeObject) => void) {
    this.#tb = tb;
    this.#client = client;
    this.#path = path;
    this.#onObject = onObject;
  }

  async start(): Promise<void> {
    await this.#relist();
    await this.#watch();
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }

  async #relist(): Promise<void> {
    const list = await this.#client.list<{ metadata: { resourceVersion: string }; items: KubeObject[] }>(this.#path);
    for (const item of list.items) this.#onObject(item);
    this.#resourceVersion = list.metadata.resourceVersion;
  }

  async #watch(): Promise<void> {
    let gone = false;
    this.#abort = await new Watch(this.#tb.kc).watch(
      this.#path,
      { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 20 },
      (type: string, obj: KubeObject & { code?: number }) => {
        if (type === "ERROR") {
          gone = obj.code === 410;
          return;
        }
        if (obj.metadata?.resourceVersion) this.#resourceVersion = obj.metadata.resourceVersion;
        if (type === "ADDED" || type === "MODIFIED") this.#onObject(obj);
      },
      (err: unknown) => {
        if (this.#stopped) return;
        this.restarts++;
        if (err)
          log(`watch ${this.#path} ended (${err instanceof Error ? err.message : JSON.stringify(err)}); resuming`);
        void (async () => {
          try {
            if (err) await sleep(200); // the API server may be gone; do not spin
            if (this.#stopped) return;
            if (gone) await this.#relist();
            await this.#watch();
          } catch (e) {
            log(`watch ${this.#path} could not resume: ${String(e)}; retrying in 1 s`);
            await sleep(1000);
            if (!this.#stopped) await this.#watch().catch(() => undefined);
          }
        })();
      },
    );
  }
}

/** Resolves when `done()` holds, polling every 50 ms; throws after the phase timeout naming `what`. */
async function until(what: string, done: () => boolean, progress: () => string): Promise<void> {
  const deadline = Date.now() + phaseTimeoutMs;
  let lastReport = Date.now();
  while (!done()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${phaseTimeoutMs / 1000} s waiting for ${what}: ${progress()}`);
    if (Date.now() - lastReport > 10_000) {
      log(`  waiting for ${what}: ${progress()}`);
      lastReport = Date.now();
    }
    await sleep(50);
  }
}

async function deleteNamespace(tb: Testbed, name: string): Promise<number> {
  const t0 = performance.now();
  await tb.core.deleteNamespace({ name });
  await tb.waitFor(
    `namespace ${name} to be gone`,
    async () => {
      try {
        await tb.core.readNamespace({ name });
        return false;
      } catch (err) {
        if (/404|NotFound/.test(String(err))) return true;
        throw err;
      }
    },
    phaseTimeoutMs,
  );
  return (performance.now() - t0) / 1000;
}

/**
 * Every ModelDeployment gets a ClusterIP Service, so the cluster's Service CIDR must have `count` free
 * addresses; says so up front instead of failing half way with "failed to allocate a serviceIP".
 */
async function checkServiceIpCapacity(client: KubeClient): Promise<void> {
  const cidrs = await client.list<{ items: { spec?: { cidrs?: string[] } }[] }>(
    "/apis/networking.k8s.io/v1/servicecidrs",
  );
  let capacity = 0;
  const ranges: string[] = [];
  for (const c of cidrs.items.flatMap((i) => i.spec?.cidrs ?? [])) {
    const m = /^\d+\.\d+\.\d+\.\d+\/(\d+)$/.exec(c);
    if (!m) continue; // IPv6 ranges are not used by single-stack IPv4 Services
    ranges.push(c);
    capacity += 2 ** (32 - Number(m[1])) - 2; // network and broadcast addresses are reserved
  }
  const services = await client.list<{ items: { spec?: { clusterIP?: string } }[] }>(collectionPath(Resources.Service));
  const used = services.items.filter((s) => s.spec?.clusterIP && s.spec.clusterIP !== "None").length;
  if (capacity - used < count) {
    throw new Error(
      `the cluster's Service CIDR (${ranges.join(", ") || "none"}) has ${capacity - used} free ClusterIPs but this ` +
        `bench needs ${count} (one Service per ModelDeployment): widen the API server's --service-cluster-ip-range ` +
        `in test/testbed/cluster.ts, or run with BENCH_MDS=${Math.max(0, capacity - used)} or fewer`,
    );
  }
}

interface DirectResult {
  /** POST (create, as the operator creates a new child), or server-side apply (as it updates one). */
  how: "create" | "apply";
  replicas: number;
  objects: number;
  seconds: number;
  objectsPerSecond: number;
  requestLatency: Latency;
  /** Replicas 1 only: until every Deployment reports its pod available (the cluster's own pipeline). */
  allDeploymentsAvailableSeconds?: number;
  namespaceDeletionSeconds: number;
}

/**
 * Creates the 1,000 children directly with `replicas` each; times the writes (and, for 1, availability).
 * `how`: a POST per object (the operator's request for a new child), or a server-side apply under the
 * operator's field manager that creates it (what the operator sent for a new child before 2026-12-08).
 */
async function directPhase(
  tb: Testbed,
  client: KubeClient,
  replicas: number,
  how: "create" | "apply" = "create",
): Promise<DirectResult> {
  const ns = await tb.createNamespace(`bench-direct-${how}-r${replicas}`);
  const objects = names.flatMap((n, i) => childrenOf(ns, n, i, replicas));
  const available = new Set<string>();
  const watch = new CollectionWatch(tb, client, collectionPath(Resources.Deployment, ns), (d) => {
    const status = d.status as { availableReplicas?: number } | undefined;
    if ((status?.availableReplicas ?? 0) >= 1) available.add(d.metadata!.name!);
  });
  const latencies: number[] = [];
  let seconds: number;
  let allDeploymentsAvailableSeconds: number | undefined;
  try {
    if (replicas > 0) await watch.start();
    const t0 = performance.now();
    await pool(objects, concurrency, async (obj) => {
      const resource: Resource = obj.kind === "Deployment" ? Resources.Deployment : Resources.Service;
      const started = performance.now();
      if (how === "create") await client.request("create", collectionPath(resource, ns), { body: obj });
      else await applyObject(client, resource, obj as ApplyObject);
      latencies.push(performance.now() - started);
    });
    seconds = (performance.now() - t0) / 1000;
    log(`  ${objects.length} objects created in ${seconds.toFixed(2)} s`);
    if (replicas > 0) {
      await until(
        "all direct Deployments to be available",
        () => available.size >= count,
        () => `${available.size}/${count} available`,
      );
      allDeploymentsAvailableSeconds = (performance.now() - t0) / 1000;
      log(`  all ${count} Deployments available after ${allDeploymentsAvailableSeconds.toFixed(2)} s`);
    }
  } finally {
    watch.stop();
  }
  const namespaceDeletionSeconds = await deleteNamespace(tb, ns);
  log(`  namespace deleted in ${namespaceDeletionSeconds.toFixed(1)} s`);
  return {
    how,
    replicas,
    objects: objects.length,
    seconds: round(seconds, 2),
    objectsPerSecond: round(objects.length / seconds),
    requestLatency: latency(latencies),
    ...(allDeploymentsAvailableSeconds !== undefined
      ? { allDeploymentsAvailableSeconds: round(allDeploymentsAvailableSeconds, 2) }
      : {}),
    namespaceDeletionSeconds: round(namespaceDeletionSeconds),
  };
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (enough of it for counters and gauges). */
function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

async function scrape(op: OperatorProcess): Promise<Sample[]> {
  const res = await fetch(`http://127.0.0.1:${op.healthPort}/metrics`);
  return parseMetrics(await res.text());
}

/** The operator's CPU seconds (user and system, all threads), as its /metrics reports them. */
async function operatorCpuSeconds(op: OperatorProcess): Promise<number> {
  const sample = (await scrape(op)).find((s) => s.name === "maas_operator_process_cpu_seconds_total");
  if (sample === undefined) throw new Error("the operator's /metrics has no maas_operator_process_cpu_seconds_total");
  return sample.value;
}

/** Resident set size of a process from /proc, in MiB; `peak` gives VmHWM (the high-water mark). */
function procRssMiB(pid: number, peak = false): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${peak ? "VmHWM" : "VmRSS"}:\\s+(\\d+) kB`, "m").exec(status);
  if (!m) throw new Error(`no ${peak ? "VmHWM" : "VmRSS"} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

const isReady = (md: KubeObject): boolean => {
  const status = md.status as
    { observedGeneration?: number; conditions?: { type: string; status: string }[] } | undefined;
  return (
    status?.observedGeneration === md.metadata?.generation &&
    status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true
  );
};

async function operatorPhase(tb: Testbed, client: KubeClient, root?: string) {
  const op = await startOperator(tb, {
    args: ["--log-level=info", `--workers=${root ? baselineWorkers : operatorWorkers}`],
    name: root ? "bench-operator-baseline" : "bench-operator",
    ...operatorEnv,
    ...(root ? { root } : {}),
  });
  const pid = op.child.pid!;
  let watches: CollectionWatch[] = [];
  let sampling = false;
  try {
    // Workers run only on the leader; start the clock once it leads so lease acquisition is not measured.
    await tb.waitFor(
      "the operator to lead",
      async () => (await scrape(op)).some((s) => s.name === "maas_operator_leader" && s.value === 1),
      60_000,
    );
    const rssIdleMiB = procRssMiB(pid);
    const ns = await tb.createNamespace("bench-operator");
    const sentAt = new Map<string, number>();
    const deploymentAt = new Map<string, number>();
    const serviceAt = new Map<string, number>();
    const readyAt = new Map<string, number>();
    const seen = (into: Map<string, number>) => (obj: KubeObject) => {
      const name = obj.metadata?.name;
      if (name && !into.has(name)) into.set(name, performance.now());
    };
    watches = [
      new CollectionWatch(tb, client, collectionPath(Resources.Deployment, ns), seen(deploymentAt)),
      new CollectionWatch(tb, client, collectionPath(Resources.Service, ns), seen(serviceAt)),
      new CollectionWatch(tb, client, collectionPath(Resources.ModelDeployment, ns), (md) => {
        if (isReady(md)) seen(readyAt)(md);
      }),
    ];
    for (const w of watches) await w.start();

    const rss: { seconds: number; rssMiB: number }[] = [];
    sampling = true;
    const since = new Date();
    const t0 = performance.now();
    const sampler = (async () => {
      while (sampling && op.child.exitCode === null) {
        try {
          rss.push({ seconds: round((performance.now() - t0) / 1000, 2), rssMiB: round(procRssMiB(pid)) });
        } catch {
          return; // the operator exited; the phase fails on its own
        }
        await sleep(1000);
      }
    })();

    await pool(names, concurrency, async (name) => {
      sentAt.set(name, performance.now());
      await client.request("create", collectionPath(Resources.ModelDeployment, ns), {
        body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
      });
    });
    const createdSeconds = (performance.now() - t0) / 1000;
    log(`  ${count} ModelDeployments created in ${createdSeconds.toFixed(2)} s`);

    await until(
      "every ModelDeployment's Deployment and Service",
      () => deploymentAt.size >= count && serviceAt.size >= count,
      () => `${deploymentAt.size} Deployments, ${serviceAt.size} Services of ${count}`,
    );
    const childrenSeconds = (Math.max(...deploymentAt.values(), ...serviceAt.values()) - t0) / 1000;
    const rssAtChildrenMiB = procRssMiB(pid);
    log(`  all ${2 * count} children applied after ${childrenSeconds.toFixed(2)} s`);

    await until(
      "every ModelDeployment to be Ready=True at its generation",
      () => readyAt.size >= count,
      () => `${readyAt.size}/${count} Ready`,
    );
    const readySeconds = (Math.max(...readyAt.values()) - t0) / 1000;
    log(`  all ${count} ModelDeployments Ready after ${readySeconds.toFixed(2)} s`);
    for (const w of watches) w.stop();

    // The operator writes Events one at a time behind the reconciles: wait until its count of them
    // stops moving, so the audit log below holds them all.
    const eventsRecorded = async (): Promise<number> =>
      (await scrape(op)).filter((s) => s.name === "maas_operator_events_total").reduce((a, s) => a + s.value, 0);
    let eventsLast = await eventsRecorded();
    for (let still = 0, deadline = Date.now() + phaseTimeoutMs; still < 3 && Date.now() < deadline;) {
      await sleep(1000);
      const now = await eventsRecorded();
      still = now === eventsLast ? still + 1 : 0;
      eventsLast = now;
    }
    // Let the last status writes and pod updates land before reading memory, metrics and the audit log.
    await sleep(3000);
    sampling = false;
    await sampler;
    const samples = await scrape(op);
    const metric = (name: string): Sample[] => samples.filter((s) => s.name === name);
    const rssMetricMiB = (metric("maas_operator_process_resident_memory_bytes")[0]?.value ?? NaN) / 2 ** 20;
    const heapUsedMiB = (metric("maas_operator_nodejs_heap_size_used_bytes")[0]?.value ?? NaN) / 2 ** 20;

    // What the operator's caches hold: its informers watch all namespaces with these selectors.
    const countOf = async (resource: Resource, selector?: string): Promise<number> =>
      (await client.list<{ items: unknown[] }>(collectionPath(resource), selector)).items.length;
    const cached = {
      modelDeployments: await countOf(Resources.ModelDeployment),
      deployments: await countOf(Resources.Deployment, managedBySelector),
      services: await countOf(Resources.Service, managedBySelector),
      pods: await countOf(Resources.Pod, managedBySelector),
    };

    const writes = (
      await tb.auditEvents({ user: op.user, since, verbs: ["create", "update", "patch", "delete", "deletecollection"] })
    ).filter((e) => e.objectRef?.resource !== "leases");
    const writesByKind: Record<string, number> = {};
    for (const e of writes) {
      const what = `${e.verb} ${e.objectRef?.resource ?? "?"}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;
      writesByKind[what] = (writesByKind[what] ?? 0) + 1;
    }
    const perMd = (f: (m: string) => number | undefined): number[] => names.map((n) => (f(n) ?? NaN) - sentAt.get(n)!);
    // When the Events were written, in seconds from the first create (the audit log's clock).
    const eventSeconds = writes
      .filter((e) => e.verb === "create" && e.objectRef?.resource === "events")
      .map((e) => (Date.parse(e.requestReceivedTimestamp) - since.getTime()) / 1000);

    const result = {
      namespace: ns,
      modelDeploymentsCreatedSeconds: round(createdSeconds, 2),
      allChildrenAppliedSeconds: round(childrenSeconds, 2),
      allReadySeconds: round(readySeconds, 2),
      perModelDeployment: {
        childrenAppliedAfterCreate: latency(perMd((n) => Math.max(deploymentAt.get(n)!, serviceAt.get(n)!))),
        readyAfterCreate: latency(perMd((n) => readyAt.get(n))),
      },
      memory: {
        rssIdleMiB: round(rssIdleMiB),
        rssAtAllChildrenMiB: round(rssAtChildrenMiB),
        rssEndMiB: round(rssMetricMiB),
        rssPeakMiB: round(procRssMiB(pid, true)),
        heapUsedEndMiB: round(heapUsedMiB),
        cachedObjects: { ...cached, total: Object.values(cached).reduce((a, b) => a + b, 0) },
        samples: rss,
      },
      operatorMetrics: {
        reconcilesByResult: Object.fromEntries(
          metric("maas_operator_reconcile_total").map((s) => [s.labels["result"] ?? "?", s.value]),
        ),
        apiRequestsByVerbAndCode: Object.fromEntries(
          metric("maas_operator_api_requests_total").map((s) => [`${s.labels["verb"]} ${s.labels["code"]}`, s.value]),
        ),
        meanApiRequestMsByVerb: Object.fromEntries(
          metric("maas_operator_api_request_duration_seconds_count").map((c) => {
            const sum = metric("maas_operator_api_request_duration_seconds_sum").find(
              (s) => s.labels["verb"] === c.labels["verb"],
            );
            return [c.labels["verb"] ?? "?", round(((sum?.value ?? NaN) / c.value) * 1000)];
          }),
        ),
        meanReconcileMs: round(
          ((metric("maas_operator_reconcile_duration_seconds_sum")[0]?.value ?? NaN) /
            (metric("maas_operator_reconcile_duration_seconds_count")[0]?.value ?? NaN)) *
            1000,
        ),
        workqueueAdds: metric("maas_operator_workqueue_adds_total")[0]?.value ?? NaN,
        workqueueRetries: metric("maas_operator_workqueue_retries_total")[0]?.value ?? 0,
        watchRestarts: metric("maas_operator_watch_restarts_total").reduce((a, s) => a + s.value, 0),
        cpuSeconds: round(metric("maas_operator_process_cpu_seconds_total")[0]?.value ?? NaN, 2),
      },
      auditedWrites: {
        total: writes.length,
        perModelDeployment: round(writes.length / count, 2),
        byVerbAndResource: writesByKind,
      },
      events: {
        created: eventSeconds.length,
        createdBeforeAllChildrenApplied: eventSeconds.filter((t) => t <= childrenSeconds).length,
        createdBeforeAllReady: eventSeconds.filter((t) => t <= readySeconds).length,
        lastCreatedSeconds: eventSeconds.length ? round(Math.max(...eventSeconds), 2) : null,
      },
    };
    const code = await op.stop();
    if (code !== 0) log(`the operator exited with ${code} on SIGTERM (expected 0)`);
    return result;
  } finally {
    for (const w of watches) w.stop();
    sampling = false;
    await op.stop();
  }
}

interface MemoryStep {
  modelDeployments: number;
  /** Seconds from the first create of this step to every ModelDeployment of it Ready. */
  readySeconds: number;
  /** RSS when the last of the step became Ready (the burst of reconciles just ended). */
  rssAtReadyMiB: number;
  /** RSS after 30 s at rest. */
  rssMiB: number;
  /** The operator's CPU seconds from the first create of this step to every ModelDeployment of it Ready. */
  cpuSecondsToReady: number;
  /** The same per ModelDeployment added in this step, in milliseconds. */
  cpuMsPerModelDeployment: number;
  heapUsedMiB: number;
  cachedObjects: Record<string, number>;
  /** Mean JSON bytes per object of each kind: as served, and as the operator's cache keeps it. */
  jsonBytesPerObject: Record<string, { served: number; cached: number }>;
}

/**
 * A fresh operator takes over everything created so far; ModelDeployments are added (in a new
 * namespace, on fake CPU nodes with room for them) until it holds each step's number, and its
 * memory is read once all are Ready.
 */
async function memoryPhase(
  tb: Testbed,
  client: KubeClient,
): Promise<{ steps: MemoryStep[]; perModelDeploymentKiB: number }> {
  // kwok-cpu-0 holds 1,100 pods; more fake CPU nodes for the larger steps.
  const extraNodes = Math.ceil(Math.max(0, ...memorySteps) / 1000);
  for (let i = 1; i <= extraNodes; i++) {
    await tb.core.createNode({ body: fakeNode(`kwok-cpu-bench-${i}`, "1200", "4Ti", "1100") });
  }
  const op = await startOperator(tb, {
    args: ["--log-level=info", `--workers=${operatorWorkers}`],
    name: "bench-memory",
    ...operatorEnv,
  });
  const pid = op.child.pid!;
  const ns = await tb.createNamespace("bench-memory");
  const steps: MemoryStep[] = [];
  const readyAt = new Map<string, number>();
  const watch = new CollectionWatch(tb, client, collectionPath(Resources.ModelDeployment, ns), (md) => {
    const name = md.metadata?.name;
    if (name && isReady(md) && !readyAt.has(name)) readyAt.set(name, performance.now());
  });
  try {
    await tb.waitFor(
      "the memory phase's operator to lead",
      async () => (await scrape(op)).some((s) => s.name === "maas_operator_leader" && s.value === 1),
      60_000,
    );
    await watch.start();
    const existing = async () =>
      (await client.list<{ items: unknown[] }>(collectionPath(Resources.ModelDeployment))).items.length;
    let created = 0;
    for (const target of memorySteps) {
      const add = target - (await existing());
      const batch = Array.from({ length: Math.max(0, add) }, (_, i) => `mem-${String(created + i).padStart(5, "0")}`);
      created += batch.length;
      log(`  memory: adding ${batch.length} ModelDeployments for ${target}…`);
      const t0 = performance.now();
      const cpu0 = await operatorCpuSeconds(op);
      await pool(batch, concurrency, async (name) => {
        await client.request("create", collectionPath(Resources.ModelDeployment, ns), {
          body: { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec },
        });
      });
      await until(
        `the ${target} ModelDeployments of the memory step to be Ready`,
        () => readyAt.size >= created,
        () => `${readyAt.size}/${created} Ready in ${ns}`,
      );
      const readySeconds = (performance.now() - t0) / 1000;
      const cpuSeconds = (await operatorCpuSeconds(op)) - cpu0;
      // The last status writes and pod updates land, then the operator sits idle for 30 s (V8 gives
      // back the young generation it grew during the burst): the figure is what it holds at rest.
      const burstRssMiB = procRssMiB(pid);
      await sleep(30_000);
      const samples = await scrape(op);
      const heap = samples.find((x) => x.name === "maas_operator_nodejs_heap_size_used_bytes")?.value ?? NaN;
      const kinds: [string, Resource, string | undefined, (o: KubeObject) => KubeObject][] = [
        ["modelDeployments", Resources.ModelDeployment, undefined, withoutBookkeeping],
        ["deployments", Resources.Deployment, managedBySelector, childForCache],
        ["services", Resources.Service, managedBySelector, childForCache],
        ["pods", Resources.Pod, managedBySelector, (o) => podForStatus(o as never) as KubeObject],
      ];
      const cachedObjects: Record<string, number> = {};
      const jsonBytesPerObject: Record<string, { served: number; cached: number }> = {};
      for (const [kind, resource, selector, transform] of kinds) {
        const items = (await client.list<{ items: KubeObject[] }>(collectionPath(resource), selector)).items;
        cachedObjects[kind] = items.length;
        const bytes = (f: (o: KubeObject) => KubeObject) =>
          Math.round(items.reduce((sum, o) => sum + JSON.stringify(f(o)).length, 0) / Math.max(1, items.length));
        jsonBytesPerObject[kind] = { served: bytes((o) => o), cached: bytes(transform) };
      }
      const step: MemoryStep = {
        modelDeployments: cachedObjects["modelDeployments"] ?? NaN,
        readySeconds: round(readySeconds, 1),
        rssAtReadyMiB: round(burstRssMiB),
        rssMiB: round(procRssMiB(pid)),
        cpuSecondsToReady: round(cpuSeconds, 1),
        cpuMsPerModelDeployment: round((cpuSeconds * 1000) / Math.max(1, batch.length), 2),
        heapUsedMiB: round(heap / 2 ** 20),
        cachedObjects,
        jsonBytesPerObject,
      };
      log(
        `  memory at ${step.modelDeployments} ModelDeployments: RSS ${step.rssMiB} MiB (${step.rssAtReadyMiB} at Ready), heap ${step.heapUsedMiB} MiB, CPU ${step.cpuSecondsToReady} s to Ready`,
      );
      steps.push(step);
    }
    const [first, last] = [steps[0], steps.at(-1)];
    const perModelDeploymentKiB =
      first && last && last !== first
        ? round(((last.rssMiB - first.rssMiB) * 1024) / (last.modelDeployments - first.modelDeployments), 1)
        : NaN;
    return { steps, perModelDeploymentKiB };
  } finally {
    watch.stop();
    await op.stop();
  }
}

function markdown(report: Report): string {
  const { direct0, direct1, directApply1, operator: op } = report;
  const fmt = (s: number): string => s.toFixed(2);
  const lines = [
    `Machine: ${report.machine.cpus} × ${report.machine.cpuModel}, ${report.machine.memoryGiB} GiB, Node ${report.machine.node}; ` +
      `Kubernetes ${report.machine.kubernetes} (etcd, kube-apiserver, controller-manager, scheduler, kwok and the bench on the same machine). ` +
      `${count} ModelDeployments, client concurrency ${concurrency}, ${report.settings.operatorWorkers} operator workers. ` +
      `Load average (1 min) at start ${report.machine.loadAverageAtStart[0]}, at end ${report.machine.loadAverageAtEnd[0]}.`,
    "",
    "| What | Objects | Wall time (s) | Objects/s |",
    "|---|---:|---:|---:|",
    `| Direct create, Deployments at replicas 0 (API writes only) | ${direct0.objects} | ${fmt(direct0.seconds)} | ${direct0.objectsPerSecond} |`,
    `| Direct create, the operator's exact children (replicas 1: pods follow) | ${direct1.objects} | ${fmt(direct1.seconds)} | ${direct1.objectsPerSecond} |`,
    `| … until all ${count} direct Deployments are Available (cluster pipeline) | ${count} | ${fmt(direct1.allDeploymentsAvailableSeconds ?? NaN)} | – |`,
    `| Direct server-side apply of the same children | ${directApply1.objects} | ${fmt(directApply1.seconds)} | ${directApply1.objectsPerSecond} |`,
    `| Operator: ${count} ModelDeployments created by the client | ${count} | ${fmt(op.modelDeploymentsCreatedSeconds)} | ${round(count / op.modelDeploymentsCreatedSeconds)} |`,
    `| **Operator: all Deployments + Services applied** | ${2 * count} | **${fmt(op.allChildrenAppliedSeconds)}** | ${round((2 * count) / op.allChildrenAppliedSeconds)} |`,
    `| **Operator: all status observed (observedGeneration = generation, Ready=True)** | ${count} | **${fmt(op.allReadySeconds)}** | – |`,
    "",
    `Ratio, operator time-to-children / direct create: **${report.ratios.childrenVsDirectReplicas0.toFixed(2)}×** (vs replicas 0), ` +
      `**${report.ratios.childrenVsDirectReplicas1.toFixed(2)}×** (vs the same objects at replicas 1), ` +
      `**${report.ratios.childrenVsDirectApplyReplicas1.toFixed(2)}×** (vs the same objects applied directly; direct apply / direct create ${report.ratios.directApplyVsDirectCreateReplicas1.toFixed(2)}×). ` +
      `Status observed / direct Deployments Available: **${report.ratios.readyVsDirectAvailable.toFixed(2)}×**.`,
    "",
    ...(report.rounds.length > 1
      ? [
          `${report.rounds.length} rounds (the median one above); ratio to the direct create of the same objects per round: ` +
            `${report.rounds.map((r) => `${r.ratios.childrenVsDirectReplicas1.toFixed(2)}×`).join(", ")}; to the direct create at replicas 0: ` +
            `${report.rounds.map((r) => `${r.ratios.childrenVsDirectReplicas0.toFixed(2)}×`).join(", ")}; to the direct apply of the same objects: ` +
            `${report.rounds.map((r) => `${r.ratios.childrenVsDirectApplyReplicas1.toFixed(2)}×`).join(", ")}; direct apply / direct create: ` +
            `${report.rounds.map((r) => `${r.ratios.directApplyVsDirectCreateReplicas1.toFixed(2)}×`).join(", ")}; direct create (replicas 1) ` +
            `${report.rounds.map((r) => fmt(r.directReplicas1Seconds)).join(", ")} s, operator ${report.rounds.map((r) => fmt(r.operatorChildrenSeconds)).join(", ")} s.`,
          "",
        ]
      : []),
    ...(report.rounds.some((r) => r.baseline)
      ? [
          `Baseline operator (${baselineDir ?? ""}, ${baselineWorkers} workers) in the same rounds: all children applied after ` +
            `${report.rounds.map((r) => (r.baseline ? fmt(r.baseline.operatorChildrenSeconds) : "-")).join(", ")} s ` +
            `(${report.rounds.map((r) => (r.baseline ? `${r.baseline.childrenVsDirectReplicas1.toFixed(2)}×` : "-")).join(", ")} the direct create), ` +
            `all Ready after ${report.rounds.map((r) => (r.baseline ? fmt(r.baseline.operatorReadySeconds) : "-")).join(", ")} s; ` +
            `writes per ModelDeployment ${report.rounds.map((r) => r.baseline?.writesPerModelDeployment ?? "-").join(", ")}.`,
          "",
        ]
      : []),
    `Per ModelDeployment, from its create request: children applied p50 ${op.perModelDeployment.childrenAppliedAfterCreate.p50Ms} ms, ` +
      `p95 ${op.perModelDeployment.childrenAppliedAfterCreate.p95Ms} ms; Ready p50 ${op.perModelDeployment.readyAfterCreate.p50Ms} ms, ` +
      `p95 ${op.perModelDeployment.readyAfterCreate.p95Ms} ms.`,
    "",
    "| Operator memory | MiB |",
    "|---|---:|",
    `| RSS idle (leading, empty caches) | ${op.memory.rssIdleMiB} |`,
    `| RSS when all children were applied | ${op.memory.rssAtAllChildrenMiB} |`,
    `| RSS at the end (${op.memory.cachedObjects.total} cached objects: ${op.memory.cachedObjects.modelDeployments} MDs, ${op.memory.cachedObjects.deployments} Deployments, ${op.memory.cachedObjects.services} Services, ${op.memory.cachedObjects.pods} Pods) | ${op.memory.rssEndMiB} |`,
    `| RSS peak (VmHWM) | ${op.memory.rssPeakMiB} |`,
    `| V8 heap used at the end | ${op.memory.heapUsedEndMiB} |`,
    "",
    `Operator CPU: ${op.operatorMetrics.cpuSeconds} s. Reconciles by result: ${Object.entries(
      op.operatorMetrics.reconcilesByResult,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ", ",
      )}; mean reconcile ${op.operatorMetrics.meanReconcileMs} ms; mean API request ms by verb: ${Object.entries(
      op.operatorMetrics.meanApiRequestMsByVerb,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ", ",
      )}; work queue adds ${op.operatorMetrics.workqueueAdds}, retries ${op.operatorMetrics.workqueueRetries}, watch restarts ${op.operatorMetrics.watchRestarts}.`,
    "",
    "| API requests (verb code) | Count |",
    "|---|---:|",
    ...Object.entries(op.operatorMetrics.apiRequestsByVerbAndCode).map(([k, v]) => `| ${k} | ${v} |`),
    "",
    `Writes by the operator in the audit log (leases excluded): ${op.auditedWrites.total}, ` +
      `${op.auditedWrites.perModelDeployment} per ModelDeployment. Events created: ${op.events.created}, ` +
      `${op.events.createdBeforeAllChildrenApplied} of them before the last child was applied, ` +
      `${op.events.createdBeforeAllReady} before the last Ready; the last ${op.events.lastCreatedSeconds ?? "-"} s after the first create.`,
    "",
    "| Audited write | Count | Per MD |",
    "|---|---:|---:|",
    ...Object.entries(op.auditedWrites.byVerbAndResource)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `| ${k} | ${v} | ${round(v / count, 2)} |`),
  ];
  if (report.memory) {
    lines.push(
      "",
      `Memory of one operator holding N ModelDeployments, each with its Deployment, Service and Pod (all Ready); growth ${report.memory.perModelDeploymentKiB} KiB RSS per ModelDeployment between the steps:`,
      "",
      "| ModelDeployments | Cached objects | RSS MiB when all Ready | RSS MiB after 30 s at rest | V8 heap used MiB | Operator CPU ms per added MD |",
      "|---:|---:|---:|---:|---:|---:|",
      ...report.memory.steps.map(
        (m) =>
          `| ${m.modelDeployments} | ${Object.values(m.cachedObjects).reduce((a, b) => a + b, 0)} | ${m.rssAtReadyMiB} | ${m.rssMiB} | ${m.heapUsedMiB} | ${m.cpuMsPerModelDeployment} |`,
      ),
      "",
      "| Kind | JSON bytes as served | JSON bytes as cached |",
      "|---|---:|---:|",
      ...Object.entries(report.memory.steps.at(-1)?.jsonBytesPerObject ?? {}).map(
        ([k, v]) => `| ${k} | ${v.served} | ${v.cached} |`,
      ),
    );
  }
  return lines.join("\n");
}

type Report = Awaited<ReturnType<typeof run>>;

function ratiosOf(
  direct0: { seconds: number },
  direct1: { seconds: number; allDeploymentsAvailableSeconds?: number | undefined },
  directApply1: { seconds: number },
  operator: { allChildrenAppliedSeconds: number; allReadySeconds: number },
) {
  return {
    childrenVsDirectReplicas0: round(operator.allChildrenAppliedSeconds / direct0.seconds, 2),
    childrenVsDirectReplicas1: round(operator.allChildrenAppliedSeconds / direct1.seconds, 2),
    childrenVsDirectApplyReplicas1: round(operator.allChildrenAppliedSeconds / directApply1.seconds, 2),
    directApplyVsDirectCreateReplicas1: round(directApply1.seconds / direct1.seconds, 2),
    readyVsDirectAvailable: round(operator.allReadySeconds / (direct1.allDeploymentsAvailableSeconds ?? NaN), 2),
  };
}

async function run() {
  const started = performance.now();
  const loadAverageAtStart = loadavg().map((l) => round(l, 2));
  log(`starting the test bed (full mode)…`);
  const tb = await useTestbed("full");
  await installCrd(tb);
  // The operator's own HTTP client (node:https, keep-alive, TLS client certificate), with the admin identity.
  const client = new KubeClient(tb.access);
  await checkServiceIpCapacity(client);
  const measured = [];
  for (let r = 1; r <= rounds; r++) {
    const of = rounds > 1 ? ` (round ${r} of ${rounds})` : "";
    log(`direct create of ${2 * count} children, Deployments at replicas 0${of}…`);
    const direct0 = await directPhase(tb, client, 0);
    log(`direct create of ${2 * count} children, Deployments at replicas 1${of}…`);
    const direct1 = await directPhase(tb, client, 1);
    log(`direct server-side apply of the same ${2 * count} children, Deployments at replicas 1${of}…`);
    const directApply1 = await directPhase(tb, client, 1, "apply");
    // The baseline checkout's operator, when asked for, runs in the same round: before this one's in
    // odd rounds, after it in even ones, so neither always meets the cluster in the same state. Each
    // phase's objects are deleted before the next phase (two sets of pods would not fit the fake
    // nodes); those of this operator's last phase of all stay for the memory phase.
    const order =
      baselineDir === undefined ? ["operator"] : r % 2 === 1 ? ["baseline", "operator"] : ["operator", "baseline"];
    const results = new Map<string, Awaited<ReturnType<typeof operatorPhase>>>();
    for (const [i, which] of order.entries()) {
      log(
        `${which === "baseline" ? `operator of ${baselineDir} (baseline)` : "operator"}: ${count} ModelDeployments${of}…`,
      );
      const result = await operatorPhase(tb, client, which === "baseline" ? baselineDir : undefined);
      results.set(which, result);
      const keep = r === rounds && i === order.length - 1 && which === "operator";
      if (!keep) log(`  namespace deleted in ${(await deleteNamespace(tb, result.namespace)).toFixed(1)} s`);
    }
    const operator = results.get("operator")!;
    const baseline = results.get("baseline");
    measured.push({
      baseline,
      direct0,
      direct1,
      directApply1,
      operator,
      ratios: ratiosOf(direct0, direct1, directApply1, operator),
    });
  }
  // The round with the median ratio to the direct create of the same objects is the one detailed.
  const byRatio = [...measured].sort((a, b) => a.ratios.childrenVsDirectReplicas1 - b.ratios.childrenVsDirectReplicas1);
  const { direct0, direct1, directApply1, operator, ratios } = byRatio[Math.floor((byRatio.length - 1) / 2)]!;
  log(`memory: ${memorySteps.join(", ")} ModelDeployments…`);
  const memory = memorySteps.length ? await memoryPhase(tb, client) : undefined;
  const versions = readFileSync(path.join(repoRoot, "test/testbed/versions.env"), "utf8");
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? "",
      memoryGiB: round(totalmem() / 2 ** 30),
      node: process.version,
      kubernetes: /KUBERNETES_VERSION=(\S+)/.exec(versions)?.[1] ?? "?",
      loadAverageAtStart,
      loadAverageAtEnd: loadavg().map((l) => round(l, 2)),
    },
    settings: { modelDeployments: count, concurrency, spec, operatorWorkers, operatorLogLevel: "info" },
    client:
      "the operator's KubeClient (node:https, keep-alive connections) with the admin identity, for both the direct creates and the ModelDeployment creates",
    direct0,
    direct1,
    directApply1,
    operator,
    memory,
    ratios,
    rounds: measured.map((m) => ({
      directReplicas0Seconds: m.direct0.seconds,
      directReplicas1Seconds: m.direct1.seconds,
      directAvailableSeconds: m.direct1.allDeploymentsAvailableSeconds,
      directApplyReplicas1Seconds: m.directApply1.seconds,
      operatorChildrenSeconds: m.operator.allChildrenAppliedSeconds,
      operatorReadySeconds: m.operator.allReadySeconds,
      ratios: m.ratios,
      ...(m.baseline
        ? {
            baseline: {
              checkout: baselineDir,
              operatorWorkers: baselineWorkers,
              operatorChildrenSeconds: m.baseline.allChildrenAppliedSeconds,
              operatorReadySeconds: m.baseline.allReadySeconds,
              childrenVsDirectReplicas1: ratiosOf(m.direct0, m.direct1, m.directApply1, m.baseline)
                .childrenVsDirectReplicas1,
              writesPerModelDeployment: m.baseline.auditedWrites.perModelDeployment,
              eventsCreated: m.baseline.events.created,
            },
          }
        : {}),
    })),
    totalSeconds: round((performance.now() - started) / 1000),
  };
}

let exitCode = 0;
const onSignal = (): void => {
  void stopTestbed().finally(() => process.exit(130));
};
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);
try {
  if (memoryOnly) {
    // The memory phase alone (e.g. to compare V8 flags): printed, and kept in operator-memory.json.
    const tb = await useTestbed("full");
    await installCrd(tb);
    const memory = await memoryPhase(tb, new KubeClient(tb.access));
    const run = { date: new Date().toISOString(), nodeOptions: operatorNodeOptions ?? "", ...memory };
    console.log(JSON.stringify(run, null, 2));
    // One entry per NODE_OPTIONS value, the latest run of each.
    const file = path.join(repoRoot, "bench/results/operator-memory.json");
    const runs = (existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { nodeOptions: string }[]) : []).filter(
      (r) => r.nodeOptions !== run.nodeOptions,
    );
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify([...runs, run], null, 2) + "\n");
  } else {
    const report = await run();
    await mkdir(path.join(repoRoot, "bench/results"), { recursive: true });
    await writeFile(path.join(repoRoot, "bench/results/operator.json"), JSON.stringify(report, null, 2) + "\n");
    console.log(markdown(report));
    log(`done in ${report.totalSeconds} s; wrote bench/results/operator.json`);
  }
} catch (err) {
  process.stderr.write(`[bench:operator] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitCode = 1;
} finally {
  await stopTestbed();
}
process.exit(exitCode);
