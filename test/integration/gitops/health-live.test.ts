// Argo CD's and Flux's verdicts on live ModelDeployments: every situation of situations.ts is built on
// the test bed (real operator with its autoscaler, scheduler, kwok GPU nodes, real serving processes on
// the local node, Prometheus), the object is read back with kubectl as the tools' clients read it, and
// our health.lua runs in gopher-lua while kstatus computes Flux's status.
//
// `MAAS_WRITE_GITOPS_SAMPLES=1 npm run test:one -- test/integration/gitops/health-live.test.ts` also
// writes each object (namespace renamed to "ml", server bookkeeping dropped) to the health check's
// testdata/ and its verdict to health_test.yaml, in Argo CD's test layout. Without it, the suite checks
// that the committed samples still show the conditions live objects show today.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { format, resolveConfig } from "prettier";
import { GROUP, PLURAL, VERSION, type ModelDeployment } from "../../../operator/src/api/index.ts";
import { Env } from "../../../serving-image/src/contract.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { argoHealth, kstatus } from "../../testbed/gitops-tools.ts";
import { startModelStore, type ModelStore } from "../../testbed/model-store.ts";
import { gpuProducts } from "../../testbed/nodes.ts";
import { installCrd, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { autoscalerArgs, onLocalNode } from "../autoscaler/fixtures.ts";
import { condition, createMd, manifest, model, patchMd, readMd } from "../operator/helpers.ts";
import { saveHalfPlusThree, tempDir } from "../serving/fixtures.ts";
import { killProcessesWithEnv } from "./processes.ts";
import { healthLua, healthTestYaml, sampleFile, situations, type HealthTest, type Situation } from "./situations.ts";

const writeSamples = process.env.MAAS_WRITE_GITOPS_SAMPLES === "1";
/** The namespace samples are written with, so they do not carry a test run's random one. */
const SAMPLE_NAMESPACE = "ml";

/** A served model on the local node: real fetch and serve processes. */
const served = (uri: string) => ({
  model: { uri, format: "tfjs-graph" as const, servedName: "half", version: "1" },
  replicas: 1,
  resources: { cpu: "100m", memory: "512Mi" },
  serving: { backend: "cpu" as const, workers: 1 },
  scheduling: onLocalNode,
});

/** An autoscaled object on kwok nodes whose PromQL is a constant: `perReplica` per ready replica. */
const constantDemand = (perReplica: number) => ({
  minReplicas: 1,
  maxReplicas: 3,
  metric: { type: "PromQL" as const, query: `vector(${perReplica})`, target: 5 },
});

/** The condition tuples a sample shows: what must not drift between a committed sample and a live object. */
const conditionsOf = (md: ModelDeployment) =>
  (md.status?.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`).sort();

/** Writes YAML as the repository's Prettier settings format it, so lint passes on written samples. */
async function writeYaml(file: string, value: unknown): Promise<void> {
  writeFileSync(file, await format(stringify(value), { ...(await resolveConfig(file)), filepath: file }));
}

describe("GitOps health of live ModelDeployments: Argo CD's Lua (gopher-lua) and Flux's kstatus", function () {
  this.timeout(180_000);
  let tb: Testbed;
  let ns: string;
  let op: OperatorProcess;
  let store: ModelStore;
  const written: HealthTest[] = [];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full", { prometheus: true });
    await installCrd(tb);
    ns = await tb.createNamespace("gitops");
    const root = await tempDir("maas-gitops-store-");
    await saveHalfPlusThree(join(root, "half", "1"));
    store = await startModelStore(root);
    op = await startOperator(tb, { name: "gitops", args: [`--namespaces=${ns}`, ...autoscalerArgs(tb)] });
  });

  after(async function () {
    await op.stop();
    await store.close();
    await tb.core.deleteNamespace({ name: ns });
    if (writeSamples && written.length === situations.length) {
      const order = situations.map((s) => `testdata/${s.name}.yaml`);
      written.sort((a, b) => order.indexOf(a.inputPath) - order.indexOf(b.inputPath));
      await writeYaml(healthTestYaml, { tests: written });
    }
  });

  /** The object as the API server serves it to kubectl (and to Argo CD's and Flux's clients). */
  async function live(namespace: string, name: string): Promise<ModelDeployment> {
    const r = await tb.kubectl(["-n", namespace, "get", "md", name, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ModelDeployment;
  }

  /** The object as a sample: a fixed namespace, without the server's bookkeeping. */
  function asSample(md: ModelDeployment, namespace: string): ModelDeployment {
    const copy = JSON.parse(JSON.stringify(md).replaceAll(namespace, SAMPLE_NAMESPACE)) as ModelDeployment;
    const {
      managedFields: _m,
      uid: _u,
      resourceVersion: _r,
      ...metadata
    } = copy.metadata as ModelDeployment["metadata"] & {
      managedFields?: unknown;
    };
    copy.metadata = metadata;
    return copy;
  }

  /**
   * Judges a live object with both tools and checks the situation's verdicts; then writes it as a
   * sample, or checks that the committed sample shows the same conditions.
   */
  async function judge(s: Situation, md: ModelDeployment, namespace = ns): Promise<void> {
    const sample = asSample(md, namespace);
    const [[closed], [open], [flux]] = await Promise.all([
      argoHealth(healthLua, [md], { openLibs: false }),
      argoHealth(healthLua, [md], { openLibs: true }),
      kstatus([md]),
    ]);
    process.stdout.write(
      `      ${s.name}: Argo CD ${closed!.status} (${closed!.message}); kstatus ${flux!.status} (${flux!.message})\n`,
    );
    assert.deepEqual(open, closed, "the same verdict with and without Argo CD's open libraries");
    assert.equal(closed!.status, s.argo, `Argo CD: ${closed!.message}`);
    assert.match(closed!.message.replaceAll(namespace, SAMPLE_NAMESPACE), s.argoMessage);
    assert.equal(flux!.status, s.kstatus, `kstatus: ${flux!.message}`);
    if (writeSamples) {
      await writeYaml(sampleFile(s.name), sample);
      const [fromSample] = await argoHealth(healthLua, [sample], { openLibs: false });
      written.push({
        healthStatus: { status: s.argo, message: fromSample!.message },
        inputPath: `testdata/${s.name}.yaml`,
      });
    } else {
      const committed = parse(readFileSync(sampleFile(s.name), "utf8")) as ModelDeployment;
      assert.deepEqual(
        conditionsOf(committed),
        conditionsOf(md),
        `testdata/${s.name}.yaml shows the conditions a live object shows (MAAS_WRITE_GITOPS_SAMPLES=1 rewrites it)`,
      );
    }
  }

  /** Frees what an object holds (local CPU, GPUs) for the next situation. */
  const deleteMd = (name: string) =>
    tb.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: PLURAL, name });

  const situation = (name: string) => situations.find((s) => s.name === name)!;

  /** Waits until the object, observed at its current generation, satisfies `pred`. */
  function until(name: string, what: string, pred: (md: ModelDeployment) => boolean, timeoutMs = 90_000) {
    return tb.waitFor(
      `${name}: ${what}`,
      async () => {
        const md = await readMd(tb, ns, name);
        return md.status?.observedGeneration === md.metadata.generation && pred(md) && md;
      },
      timeoutMs,
    );
  }
  const is = (type: string, status: string, reason?: string) => (md: ModelDeployment) => {
    const c = condition(md, type);
    return c?.status === status && (reason === undefined || c.reason === reason);
  };

  it("not seen by any operator yet: Progressing for Argo CD (kstatus cannot tell, and says Current)", async () => {
    const unwatched = await tb.createNamespace("gitops-unwatched");
    await createMd(tb, unwatched, manifest("unseen", { model, replicas: 1 }));
    const md = await live(unwatched, "unseen");
    assert.equal(md.status, undefined, "no status before any operator writes one (the CRD defaults none)");
    await judge(situation("not-seen-yet"), md, unwatched);
    await tb.core.deleteNamespace({ name: unwatched });
  });

  it("serving: Healthy and Current; rolling out a new spec: Progressing and InProgress, until it serves again", async () => {
    // A second door to the same store that holds every request until released: the new revision's
    // fetch waits there, so the rollout stays under way for as long as the test looks at it.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const gated: Server = createServer((req, res) => {
      void gate.then(async () => {
        const upstream = await fetch(store.url + (req.url ?? "/"));
        res.writeHead(upstream.status).end(Buffer.from(await upstream.arrayBuffer()));
      });
    });
    await new Promise<void>((done) => gated.listen(0, "127.0.0.1", done));
    const gatedUrl = `http://127.0.0.1:${(gated.address() as { port: number }).port}`;
    try {
      await createMd(tb, ns, manifest("sentiment", served(`${store.url}/half/1/model.json`)));
      await until("sentiment", "Ready", is("Ready", "True"));
      await judge(situation("ready"), await live(ns, "sentiment"));

      await patchMd(tb, ns, "sentiment", { spec: { model: { uri: `${gatedUrl}/half/1/model.json` } } });
      await until("sentiment", "rolling out", is("Ready", "False", "RolloutInProgress"));
      await judge(situation("rolling"), await live(ns, "sentiment"));

      release();
      const done = await until("sentiment", "Ready again", is("Ready", "True"));
      const [argo] = await argoHealth(healthLua, [done], { openLibs: false });
      const [flux] = await kstatus([done]);
      assert.deepEqual([argo!.status, flux!.status], ["Healthy", "Current"]);
    } finally {
      release();
      gated.closeAllConnections();
      gated.close();
      await deleteMd("sentiment");
    }
  });

  it("stuck on GPUs (more than any node has): Progressing and InProgress, with the scheduler's words", async () => {
    await createMd(
      tb,
      ns,
      manifest("big", { model, replicas: 1, resources: { gpu: { count: 8, product: gpuProducts.h100 } } }),
    );
    await until("big", "unschedulable for GPUs", is("Scheduled", "False", "InsufficientGPU"));
    await judge(situation("waiting-for-gpus"), await live(ns, "big"));
  });

  it("a model that cannot be fetched: Degraded and Failed, quoting the fetch", async () => {
    await createMd(tb, ns, manifest("missing", served(`${store.url}/nowhere/model.json`)));
    await until("missing", "Stalled by the fetch", is("Stalled", "True", "ModelFetchFailed"));
    await judge(situation("fetch-failed"), await live(ns, "missing"));
    await deleteMd("missing");
  });

  it("a serving container that keeps being killed: Degraded and Failed", async () => {
    await createMd(tb, ns, manifest("crashing", served(`${store.url}/half/1/model.json`)));
    await until("crashing", "Ready", is("Ready", "True"));
    // SIGKILL, as the OOM killer would: exit 137, no termination message, not a load failure.
    const stop = killProcessesWithEnv({ [Env.deploymentName]: "crashing", [Env.deploymentNamespace]: ns });
    try {
      // Settled: the Deployment has noticed the pod is not ready (for a moment it still counts it).
      await until(
        "crashing",
        "Stalled by a crash loop",
        (md) => is("Stalled", "True", "CrashLooping")(md) && is("Ready", "False")(md),
      );
      await judge(situation("crash-looping"), await live(ns, "crashing"));
    } finally {
      await stop();
    }
    await deleteMd("crashing");
  });

  it("a Deployment with its name that belongs to someone else: Degraded and Failed", async () => {
    await tb.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "taken" },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app: "taken" } },
          template: { metadata: { labels: { app: "taken" } }, spec: { containers: [{ name: "c", image: "other" }] } },
        },
      },
    });
    await createMd(tb, ns, manifest("taken", { model, replicas: 1 }));
    await until("taken", "Stalled by the conflict", is("Stalled", "True", "ChildConflict"));
    await judge(situation("child-conflict"), await live(ns, "taken"));
  });

  it("autoscaled, a scale-up waiting for GPUs: Healthy and Current at minReplicas, the wait in the message", async () => {
    // 50 per replica against a target of 5 asks for maxReplicas (3); each wants all 4 GPUs of the H100 node.
    await createMd(
      tb,
      ns,
      manifest("burst", {
        model,
        resources: { gpu: { count: 4, product: gpuProducts.h100 } },
        autoscaling: constantDemand(50),
      }),
    );
    await until(
      "burst",
      "Ready at minReplicas, waiting for capacity",
      (md) => is("Ready", "True")(md) && is("ScalingLimited", "True", "WaitingForCapacity")(md),
    );
    await judge(situation("autoscaled-waiting-for-gpus"), await live(ns, "burst"));
    await deleteMd("burst");
  });

  it("autoscaled, replicas held because Prometheus is unreachable: Suspended and Current", async () => {
    await createMd(tb, ns, manifest("steady", { model, autoscaling: constantDemand(1) }));
    await until("steady", "Ready and scaling", (md) => is("Ready", "True")(md) && is("ScalingActive", "True")(md));
    await tb.stopPrometheus();
    try {
      await until("steady", "holding", is("ScalingActive", "False", "PrometheusUnreachable"));
      await judge(situation("autoscaler-holding"), await live(ns, "steady"));
    } finally {
      await tb.startPrometheus();
    }
  });

  it("its spec changed while the operator was down: Progressing and InProgress until it observes the change", async () => {
    await createMd(tb, ns, manifest("stale", { model, replicas: 1 }));
    await until("stale", "Ready", is("Ready", "True"));
    await op.stop();
    await patchMd(tb, ns, "stale", { spec: { resources: { cpu: "2" } } });
    const md = await live(ns, "stale");
    assert.deepEqual([md.metadata.generation, md.status?.observedGeneration], [2, 1]);
    // The operator is stopped, so the status stays stale while it is judged.
    await judge(situation("stale-generation"), md);
  });
});
