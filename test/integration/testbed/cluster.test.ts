import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { gpuProducts } from "../../testbed/nodes.ts";
import { testbedDir } from "../../testbed/paths.ts";

function gpuDeployment(name: string, opts: { gpus: number; replicas: number; product?: string }): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas: opts.replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
          ...(opts.product ? { nodeSelector: { "nvidia.com/gpu.product": opts.product } } : {}),
          containers: [
            {
              name: "c",
              image: "example.invalid/gpu:1",
              resources: { limits: { "nvidia.com/gpu": String(opts.gpus) } },
            },
          ],
        },
      },
    },
  };
}

describe("test bed control plane (full mode)", function () {
  let tb: Testbed;
  let ns: string;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
    ns = await tb.createNamespace("testbed");
  });

  after(async function () {
    // Frees the fake GPUs for the suites that run after this one.
    await tb.core.deleteNamespace({ name: ns });
  });

  async function podsOf(app: string): Promise<V1Pod[]> {
    return (await tb.core.listNamespacedPod({ namespace: ns, labelSelector: `app=${app}` })).items;
  }

  it("runs GPU pods only on GPU nodes, and a product nodeSelector picks the matching node", async function () {
    // The A10 pods go first: placed after the others, they could find the A10 node's two GPUs taken.
    await tb.apps.createNamespacedDeployment({
      namespace: ns,
      body: gpuDeployment("gpu-a10", { gpus: 1, replicas: 2, product: gpuProducts.a10 }),
    });
    await tb.waitFor(
      "2 A10 pods scheduled",
      async () => (await podsOf("gpu-a10")).filter((p) => p.spec?.nodeName).length === 2,
    );
    await tb.apps.createNamespacedDeployment({
      namespace: ns,
      body: gpuDeployment("gpu-any", { gpus: 1, replicas: 3 }),
    });
    const running = await tb.waitFor("5 running GPU pods", async () => {
      const pods = [...(await podsOf("gpu-any")), ...(await podsOf("gpu-a10"))];
      return pods.length === 5 && pods.every((p) => p.status?.phase === "Running") && pods;
    });
    const nodes = new Map((await tb.core.listNode()).items.map((n) => [n.metadata!.name!, n]));
    for (const p of running) {
      const node = nodes.get(p.spec!.nodeName!)!;
      assert.ok(
        node.status?.capacity?.["nvidia.com/gpu"],
        `${p.metadata!.name!} ran on ${p.spec!.nodeName!}, which has no GPU`,
      );
      if (p.metadata!.labels!.app === "gpu-a10") {
        assert.equal(node.metadata!.labels!["nvidia.com/gpu.product"], gpuProducts.a10);
      }
    }
  });

  it("leaves a pod Pending whose PodScheduled condition names nvidia.com/gpu when it asks for more GPUs than any node has", async function () {
    await tb.apps.createNamespacedDeployment({
      namespace: ns,
      body: gpuDeployment("gpu-huge", { gpus: 16, replicas: 1 }),
    });
    const cond = await tb.waitFor("an unschedulable pod", async () => {
      const [pod] = await podsOf("gpu-huge");
      const c = pod?.status?.conditions?.find((x) => x.type === "PodScheduled");
      return c?.status === "False" && c;
    });
    assert.equal(cond.reason, "Unschedulable");
    assert.match(cond.message ?? "", /Insufficient nvidia\.com\/gpu/);
    const [pod] = await podsOf("gpu-huge");
    assert.equal(pod!.status!.phase, "Pending");
  });

  it("garbage-collects a Deployment's ReplicaSets and Pods when it is deleted", async function () {
    await tb.apps.createNamespacedDeployment({ namespace: ns, body: gpuDeployment("gc", { gpus: 1, replicas: 1 }) });
    await tb.waitFor("a pod of gc", async () => (await podsOf("gc")).length === 1);
    await tb.apps.deleteNamespacedDeployment({ namespace: ns, name: "gc" });
    await tb.waitFor("gc's ReplicaSet and Pod to be gone", async () => {
      const rs = await tb.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "app=gc" });
      return rs.items.length === 0 && (await podsOf("gc")).length === 0;
    });
  });

  it("rejects a privileged pod in a namespace that enforces the restricted Pod Security profile", async function () {
    const restricted = await tb.createNamespace("restricted", { "pod-security.kubernetes.io/enforce": "restricted" });
    await assert.rejects(
      tb.core.createNamespacedPod({
        namespace: restricted,
        body: {
          metadata: { name: "privileged" },
          spec: { containers: [{ name: "c", image: "x", securityContext: { privileged: true } }] },
        },
      }),
      (err: unknown) =>
        /violates PodSecurity/.test(String(err)) &&
        /restricted:latest/.test(String(err)) &&
        /privileged/.test(String(err)),
    );
  });

  it("attributes a write in the audit log to the user who made it", async function () {
    const since = new Date();
    const user = "audit-tester";
    await tb.rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: "audit-tester-edit" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      },
    });
    const kubeconfig = await tb.kubeconfigForUser(user);
    const r = await tb.kubectl(["-n", ns, "create", "configmap", "written-by-tester", "--from-literal=a=b"], {
      kubeconfig,
    });
    assert.equal(r.code, 0, r.stderr);
    const events = await tb.auditEvents({ since, verbs: ["create"] });
    const mine = events.filter(
      (e) => e.objectRef?.resource === "configmaps" && e.objectRef.name === "written-by-tester",
    );
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.user.username, user);
    assert.equal(mine[0]!.responseStatus?.code, 201);
  });

  it("reuses the cached binaries on a second build", function () {
    const r = spawnSync("bash", [`${testbedDir}/build.sh`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /building/, "the build script rebuilt something that was cached");
    assert.match(r.stderr, /done in \d+s/);
  });
});
