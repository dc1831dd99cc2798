import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Deployment } from "@kubernetes/client-node";
import { GROUP, PLURAL, VERSION } from "../../../operator/src/api/index.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { gpuProducts } from "../../testbed/nodes.ts";
import { installCrd, servingImageFor, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import {
  condition,
  createMd,
  manifest,
  model,
  patchMd,
  readMd,
  waitForCondition,
  waitForEvents,
  writesBy,
} from "./helpers.ts";

describe("operator: reconciling ModelDeployments on the real test bed", function () {
  let tb: Testbed;
  let op: OperatorProcess;
  let ns: string;
  let restricted: string;
  let quota: string;
  const operatorArgs = (): string[] => ["--conflict-recheck-seconds=2", `--namespaces=${ns},${restricted},${quota}`];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
    await installCrd(tb);
    ns = await tb.createNamespace("operator");
    restricted = await tb.createNamespace("restricted", { "pod-security.kubernetes.io/enforce": "restricted" });
    quota = await tb.createNamespace("quota");
    // Scoped to its own namespaces, so objects other suites left behind are not reconciled here.
    op = await startOperator(tb, { args: operatorArgs() });
  });

  after(async function () {
    const code = await op.stop();
    assert.equal(code, 0, "the operator did not exit cleanly on SIGTERM");
    // Deleted only now: tearing a namespace down mid-suite is a change the operator must follow.
    for (const name of [ns, restricted, quota]) await tb.core.deleteNamespace({ name });
  });

  const deployment = (name: string): Promise<V1Deployment> => tb.apps.readNamespacedDeployment({ namespace: ns, name });

  it("creates the Deployment and Service it specifies and runs the pods on nodes with the requested GPU product", async function () {
    await createMd(
      tb,
      ns,
      manifest("vision", { model, replicas: 2, resources: { gpu: { count: 1, product: gpuProducts.a10 } } }),
    );
    const md = await waitForCondition(tb, ns, "vision", "Ready", "True");
    assert.equal(md.status?.replicasSummary, "2/2");
    assert.equal(md.status?.endpoint, `http://vision.${ns}.svc:8080`);
    const d = await deployment("vision");
    const pod = d.spec!.template.spec!;
    assert.equal(d.metadata!.ownerReferences![0]!.uid, md.metadata.uid);
    assert.equal(pod.containers[0]!.resources!.limits!["nvidia.com/gpu"], "1");
    assert.equal(pod.nodeSelector!["nvidia.com/gpu.product"], gpuProducts.a10);
    const svc = await tb.core.readNamespacedService({ namespace: ns, name: "vision" });
    assert.deepEqual(svc.spec!.selector, { "maas.dev/deployment": "vision" });
    const pods = (await tb.core.listNamespacedPod({ namespace: ns, labelSelector: "maas.dev/deployment=vision" }))
      .items;
    assert.equal(pods.length, 2);
    for (const p of pods) {
      assert.equal(p.status!.phase, "Running");
      assert.equal(p.spec!.nodeName, "kwok-gpu-a10-0");
    }
    const events = await waitForEvents(tb, ns, "modeldeployment/vision", [
      /"ModelDeployment became Ready: 2\/2 replicas ready"/,
    ]);
    // Creating a new object's children is in its status; no Event says it again.
    assert.doesNotMatch(events, /"Created /);
  });

  it("rolls out a spec change, and follows kubectl scale", async function () {
    const before = await deployment("vision");
    await patchMd(tb, ns, "vision", { spec: { serving: { batching: { maxBatchSize: 8 } } } });
    await waitForCondition(tb, ns, "vision", "Ready", "True", 60_000, (md) => md.metadata.generation === 2);
    const after = await deployment("vision");
    assert.ok(after.metadata!.generation! > before.metadata!.generation!, "the Deployment was not updated");
    const env = after.spec!.template.spec!.containers[0]!.env!;
    assert.equal(env.find((e) => e.name === "MAAS_MAX_BATCH_SIZE")?.value, "8");
    const rs = (await tb.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "maas.dev/deployment=vision" }))
      .items;
    assert.ok(rs.length >= 2, "no new ReplicaSet: the pods did not roll");

    const r = await tb.kubectl(["-n", ns, "scale", "md/vision", "--replicas=1"]);
    assert.equal(r.code, 0, r.stderr);
    await tb.waitFor(
      "the Deployment to follow kubectl scale",
      async () => (await deployment("vision")).spec!.replicas === 1,
    );
    const md = await waitForCondition(
      tb,
      ns,
      "vision",
      "Ready",
      "True",
      60_000,
      (m) => m.status?.replicasSummary === "1/1",
    );
    assert.equal(md.spec.replicas, 1);
  });

  it("repairs a child that someone edited or deleted", async function () {
    const r = await tb.kubectl([
      "-n",
      ns,
      "patch",
      "deployment",
      "vision",
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "replace", path: "/spec/template/spec/containers/0/image", value: "evil.example/miner:1" },
      ]),
    ]);
    assert.equal(r.code, 0, r.stderr);
    await tb.waitFor(
      "the image to be repaired",
      async () => (await deployment("vision")).spec!.template.spec!.containers[0]!.image === servingImageFor(tb),
    );

    const old = await tb.core.readNamespacedService({ namespace: ns, name: "vision" });
    await tb.core.deleteNamespacedService({ namespace: ns, name: "vision" });
    const recreated = await tb.waitFor("the Service to be recreated", async () => {
      try {
        const s = await tb.core.readNamespacedService({ namespace: ns, name: "vision" });
        return s.metadata!.uid !== old.metadata!.uid && s;
      } catch {
        return false;
      }
    });
    assert.deepEqual(recreated.spec!.selector, { "maas.dev/deployment": "vision" });
    // A child of an object that already had status is news: the repair is recorded.
    await waitForEvents(tb, ns, "modeldeployment/vision", [
      new RegExp(`"Created Service ${ns}/vision"`),
      new RegExp(`"Updated Deployment ${ns}/vision \\([^)]*image had drifted\\)"`),
    ]);
  });

  it("leaves a child it does not own untouched, says so in Degraded, and takes the name once it is free", async function () {
    const foreign = await tb.core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: "taken", labels: { owner: "someone-else" } },
        spec: { selector: { app: "other" }, ports: [{ port: 80 }] },
      },
    });
    await createMd(tb, ns, manifest("taken", { model, replicas: 1 }));
    const md = await waitForCondition(tb, ns, "taken", "Degraded", "True");
    assert.equal(condition(md, "Degraded")!.reason, "ChildConflict");
    assert.match(
      condition(md, "Degraded")!.message,
      new RegExp(`Service ${ns}/taken exists and is not controlled by this ModelDeployment`),
    );
    assert.equal(condition(md, "Ready")!.status, "False");
    await sleep(3000); // a few recheck periods
    const still = await tb.core.readNamespacedService({ namespace: ns, name: "taken" });
    assert.equal(
      still.metadata!.resourceVersion,
      foreign.metadata!.resourceVersion,
      "the operator wrote to someone else's Service",
    );
    assert.equal(still.metadata!.ownerReferences, undefined);
    await waitForEvents(tb, ns, "modeldeployment/taken", [/"reason": "ChildConflict"/]);

    await tb.core.deleteNamespacedService({ namespace: ns, name: "taken" });
    await waitForCondition(tb, ns, "taken", "Degraded", "False");
    await waitForCondition(tb, ns, "taken", "Ready", "True");
  });

  it("says Scheduled=False with the scheduler's words when it asks for more GPUs than a node has, and heals when fixed", async function () {
    await createMd(tb, ns, manifest("greedy", { model, replicas: 1, resources: { gpu: { count: 8 } } }));
    const md = await waitForCondition(tb, ns, "greedy", "Scheduled", "False");
    const scheduled = condition(md, "Scheduled")!;
    assert.equal(scheduled.reason, "InsufficientGPU");
    assert.match(
      scheduled.message,
      /^1\/1 pods cannot be scheduled: 0\/\d+ nodes are available: .*Insufficient nvidia\.com\/gpu/,
    );
    const ready = condition(md, "Ready")!;
    assert.equal(ready.status, "False");
    assert.match(ready.message, /Insufficient nvidia\.com\/gpu/);

    await patchMd(tb, ns, "greedy", { spec: { resources: { gpu: { count: 1 } } } });
    const healed = await waitForCondition(tb, ns, "greedy", "Ready", "True");
    assert.equal(condition(healed, "Scheduled")!.status, "True");
  });

  it("gets its pods admitted in a namespace that enforces the restricted Pod Security profile", async function () {
    await createMd(tb, restricted, manifest("strict", { model, replicas: 1 }));
    const md = await waitForCondition(tb, restricted, "strict", "Ready", "True");
    assert.equal(md.status?.readyReplicas, 1);
    const pods = await tb.core.listNamespacedPod({
      namespace: restricted,
      labelSelector: "maas.dev/deployment=strict",
    });
    assert.equal(pods.items.length, 1);
  });

  it("says why in status when a child is forbidden (an exhausted quota), and retries until it is allowed", async function () {
    const hard = (n: number) => ({ hard: { "count/deployments.apps": String(n) } });
    await tb.core.createNamespacedResourceQuota({
      namespace: quota,
      body: { metadata: { name: "no-deployments" }, spec: hard(0) },
    });
    // Quota admission refuses everything until the quota controller has filled in the usage.
    await tb.waitFor("the quota's status", async () => {
      const q = await tb.core.readNamespacedResourceQuota({ namespace: quota, name: "no-deployments" });
      return q.status?.used !== undefined;
    });
    await createMd(tb, quota, manifest("capped", { model, replicas: 1 }));
    const md = await waitForCondition(tb, quota, "capped", "Degraded", "True");
    const degraded = condition(md, "Degraded")!;
    assert.equal(degraded.reason, "ApplyForbidden");
    assert.match(degraded.message, /^The API server refused the Deployment: .*exceeded quota: no-deployments/);
    assert.equal(condition(md, "Ready")!.status, "False");
    assert.match(condition(md, "Ready")!.message, /exceeded quota/);
    await waitForEvents(tb, quota, undefined, [/"reason": "ApplyFailed"/]);

    const raised = await tb.kubectl([
      "-n",
      quota,
      "patch",
      "resourcequota",
      "no-deployments",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: hard(1) }),
    ]);
    assert.equal(raised.code, 0, raised.stderr);
    await waitForCondition(tb, quota, "capped", "Ready", "True", 90_000);
    assert.equal(condition(await readMd(tb, quota, "capped"), "Degraded")!.status, "False");
  });

  it("makes zero writes for 60 s once everything converged, by the API server's audit log", async function () {
    this.timeout(120_000);
    for (const name of ["vision", "taken", "greedy"]) await waitForCondition(tb, ns, name, "Ready", "True");
    await waitForCondition(tb, quota, "capped", "Ready", "True");
    await sleep(3000); // let the last Events and status writes of convergence land
    const since = new Date();
    await sleep(60_000);
    const writes = await writesBy(tb, op.user, since);
    assert.deepEqual(
      writes.map((w) => `${w.verb} ${w.objectRef?.resource ?? ""}/${w.objectRef?.name ?? ""}`),
      [],
      "the operator wrote while nothing changed",
    );
    // It was not idle because it was dead: it still answers and still leads.
    assert.ok((await fetch(`http://127.0.0.1:${op.healthPort}/readyz`)).ok);
    assert.equal(condition(await readMd(tb, ns, "vision"), "Ready")!.status, "True");
  });

  it("makes zero writes when restarted onto converged objects (relisted children are not drift)", async function () {
    this.timeout(120_000);
    let count = 0;
    for (const namespace of [ns, restricted, quota]) {
      const list = (await tb.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        namespace,
      })) as {
        items: unknown[];
      };
      count += list.items.length;
    }
    assert.equal(await op.stop(), 0);
    const since = new Date();
    op = await startOperator(tb, { args: operatorArgs() });
    // Wait until the new leader has reconciled every ModelDeployment at least once.
    const reconciled = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
      return [...text.matchAll(/^maas_operator_reconcile_total\{[^}]*\} (\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    };
    await tb.waitFor(
      "the restarted operator to reconcile everything",
      async () => (await reconciled()) >= count,
      60_000,
    );
    await sleep(3000);
    const writes = await writesBy(tb, op.user, since);
    assert.deepEqual(
      writes.map((w) => `${w.verb} ${w.objectRef?.resource ?? ""}/${w.objectRef?.name ?? ""}`),
      [],
      "the restarted operator wrote to objects that had not changed",
    );
  });
});
