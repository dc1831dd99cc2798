import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestDirectory } from "../../serving-image/src/fetch/digest.ts";
import { useTestbed, type Testbed } from "../testbed/index.ts";
import { startModelStore, type ModelStore } from "../testbed/model-store.ts";
import { localNodeName, localNodeTaint } from "../testbed/nodes.ts";
import { installCrd, startOperator, type OperatorProcess } from "../testbed/operator.ts";
import { condition, createMd, manifest, patchMd, waitForCondition } from "../integration/operator/helpers.ts";
import { saveHalfPlusThree, tempDir } from "../integration/serving/fixtures.ts";

/** Runs the serving pods as real processes on the test bed's local node. */
const onLocalNode = {
  nodeSelector: { "kubernetes.io/hostname": localNodeName },
  tolerations: [{ key: localNodeTaint.key, operator: "Exists" as const, effect: "NoSchedule" as const }],
};

describe("e2e: a ModelDeployment served by the real serving image on the local node", function () {
  let tb: Testbed;
  let op: OperatorProcess;
  let ns: string;
  let store: ModelStore;
  let sha256: string;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
    await installCrd(tb);
    ns = await tb.createNamespace("e2e-serve");
    op = await startOperator(tb, { name: "e2e-operator", args: [`--namespaces=${ns}`] });
    const root = await tempDir("maas-model-store-");
    const dir = await saveHalfPlusThree(join(root, "half_plus_three", "1"));
    sha256 = await digestDirectory(dir);
    // The same model with its weight shard cut short: it fetches fine and cannot be loaded.
    const broken = join(root, "broken", "1");
    await cp(dir, broken, { recursive: true });
    const shard = join(broken, "group1-shard1of1.bin");
    await writeFile(shard, (await readFile(shard)).subarray(0, 2));
    store = await startModelStore(root);
  });

  after(async function () {
    await tb.core.deleteNamespace({ name: ns });
    await op.stop();
    await store.close();
  });

  const spec = (uri: string, extra: object = {}) => ({
    model: { uri, format: "tfjs-graph" as const, servedName: "half", version: "1", ...extra },
    replicas: 1,
    // Small requests: every pod of this suite shares the local node's 2 CPUs (a rollout adds a surge pod).
    resources: { cpu: "100m", memory: "512Mi" },
    serving: { backend: "cpu" as const, workers: 1 },
    scheduling: onLocalNode,
  });

  it("reports a model URL that 404s as ModelAvailable=False with the fetch's reason", async function () {
    await createMd(tb, ns, manifest("missing", spec(`${store.url}/nowhere/model.json`)));
    const md = await waitForCondition(tb, ns, "missing", "ModelAvailable", "False", 90_000);
    const c = condition(md, "ModelAvailable")!;
    assert.equal(c.reason, "ModelFetchFailed");
    assert.match(c.message, /^model fetch failed: .*404/);
    assert.match(condition(md, "Ready")!.message, /^0\/1 replicas ready: model fetch failed: .*404/);
  });

  it("reports a sha256 mismatch as ModelAvailable=False, ChecksumMismatch", async function () {
    const wrong = "0".repeat(64);
    await createMd(tb, ns, manifest("tampered", spec(`${store.url}/half_plus_three/1/model.json`, { sha256: wrong })));
    const md = await waitForCondition(tb, ns, "tampered", "ModelAvailable", "False", 90_000);
    const c = condition(md, "ModelAvailable")!;
    assert.equal(c.reason, "ChecksumMismatch");
    assert.match(c.message, /sha256/);
    assert.ok(c.message.includes(sha256), "the message should give the digest that was found, so users can pin it");
  });

  it("reports a model that fetches but cannot be loaded as ModelAvailable=False with the server's reason", async function () {
    await createMd(tb, ns, manifest("broken", spec(`${store.url}/broken/1/model.json`)));
    const md = await waitForCondition(tb, ns, "broken", "ModelAvailable", "False", 120_000);
    const c = condition(md, "ModelAvailable")!;
    assert.equal(c.reason, "ModelLoadFailed");
    // The node agent runs the container as a local process, so the volume's path has a local prefix.
    assert.match(
      c.message,
      /^model load failed: Failed to load the model from \S*\/models\/model: Weight shards hold 2 bytes, but model\.json's weightsManifest describes 8$/,
    );
    assert.match(condition(md, "Ready")!.message, /^0\/1 replicas ready: model load failed: /);
  });

  it("serves a good model end to end: Ready, and a prediction through the pod's port", async function () {
    await createMd(tb, ns, manifest("half", spec(`${store.url}/half_plus_three/1/model.json`, { sha256 })));
    const md = await waitForCondition(tb, ns, "half", "Ready", "True", 120_000);
    assert.equal(condition(md, "ModelAvailable")!.status, "True");
    const pods = await tb.core.listNamespacedPod({ namespace: ns, labelSelector: "maas.dev/deployment=half" });
    assert.equal(pods.items.length, 1);
    const pod = pods.items[0]!;
    assert.equal(pod.spec!.nodeName, localNodeName);
    const port = tb.podPort(ns, pod.metadata!.name!, 8080);
    assert.ok(port, "the node agent published no port for the serving container");
    const res = await fetch(`http://127.0.0.1:${port}/v1/models/half:predict`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ instances: [1.0, 2.0, 5.0] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { predictions: [3.5, 4.0, 5.5] });
    const status = (await (await fetch(`http://127.0.0.1:${port}/v1/models/half`)).json()) as {
      model_version_status: { version: string; state: string }[];
    };
    assert.deepEqual(
      status.model_version_status.map((v) => [v.version, v.state]),
      [["1", "AVAILABLE"]],
    );
  });

  it("keeps a failing model update from reading Ready while the previous revision keeps serving", async function () {
    this.timeout(180_000);
    // "half" serves from the previous test; its new revision points at a model that does not exist.
    await patchMd(tb, ns, "half", { spec: { model: { uri: `${store.url}/nowhere/model.json`, sha256: null } } });
    const md = await waitForCondition(tb, ns, "half", "ModelAvailable", "False", 90_000);
    const available = condition(md, "ModelAvailable")!;
    assert.equal(available.reason, "ModelFetchFailed");
    assert.match(available.message, /404.*; the previous revision still serves on 1 replica$/);
    const ready = condition(md, "Ready")!;
    assert.deepEqual([ready.status, ready.reason], ["False", "RolloutInProgress"]);
    assert.match(ready.message, /1 of the previous revision still serving: model fetch failed: .*404/);
    const pods = await tb.core.listNamespacedPod({ namespace: ns, labelSelector: "maas.dev/deployment=half" });
    const serving = pods.items.find((p) =>
      p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    assert.ok(serving, "the previous revision's pod is still Ready");
    const port = tb.podPort(ns, serving.metadata!.name!, 8080);
    const res = await fetch(`http://127.0.0.1:${port}/v1/models/half:predict`, {
      method: "POST",
      body: JSON.stringify({ instances: [1.0] }),
    });
    assert.equal(res.status, 200, "and it still answers");
  });

  it("names a missing credentials Secret in status, and fetches once it exists", async function () {
    this.timeout(180_000);
    const uri = `${store.url}/half_plus_three/1/model.json`;
    await createMd(tb, ns, manifest("secret", spec(uri, { credentialsSecretRef: { name: "model-store" } })));
    const md = await waitForCondition(tb, ns, "secret", "ModelAvailable", "False", 90_000);
    const c = condition(md, "ModelAvailable")!;
    assert.equal(c.reason, "CredentialsSecretMissing");
    assert.equal(c.message, 'The model\'s credentials cannot be read: container fetch: secret "model-store" not found');
    await tb.core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: "model-store" }, stringData: { HTTP_AUTHORIZATION: "Bearer test-token" } },
    });
    await waitForCondition(tb, ns, "secret", "Ready", "True", 120_000);
  });
});
