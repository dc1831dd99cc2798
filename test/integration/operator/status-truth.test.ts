import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { V1Deployment } from "@kubernetes/client-node";
import type { ModelDeploymentSpec } from "../../../operator/src/api/index.ts";
import { Annotations } from "../../../operator/src/reconcile/labels.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { gpuProducts } from "../../testbed/nodes.ts";
import { installCrd, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { condition, createMd, manifest, model, patchMd, readMd, waitForCondition, waitForEvents } from "./helpers.ts";

type Spec = Partial<ModelDeploymentSpec> & Pick<ModelDeploymentSpec, "model">;

describe("operator: status tells the truth, and the spec reaches the children, removals included", function () {
  let tb: Testbed;
  let op: OperatorProcess;
  let ns: string;
  let fresh: string;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
    await installCrd(tb);
    ns = await tb.createNamespace("truth");
    fresh = await tb.createNamespace("truth-fresh");
    op = await startOperator(tb, { args: ["--conflict-recheck-seconds=2", `--namespaces=${ns},${fresh}`] });
  });

  after(async function () {
    await op.stop();
    for (const name of [ns, fresh]) await tb.core.deleteNamespace({ name });
  });

  /** Server-side apply of a whole ModelDeployment, as a GitOps tool applies what is in the repository. */
  async function applyMd(namespace: string, name: string, spec: Spec): Promise<void> {
    const r = await tb.kubectl(["-n", namespace, "apply", "--server-side", "--field-manager=gitops", "-f", "-"], {
      input: JSON.stringify(manifest(name, spec)),
    });
    if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
  }

  /** The Deployment once it reflects the object's current generation. */
  async function converged(namespace: string, name: string): Promise<V1Deployment> {
    await tb.waitFor(
      `${namespace}/${name} observed`,
      async () => {
        const md = await readMd(tb, namespace, name);
        return md.status?.observedGeneration === md.metadata.generation;
      },
      60_000,
    );
    return tb.apps.readNamespacedDeployment({ namespace, name });
  }

  /** A Deployment's spec with what necessarily differs between two namespaces made equal. */
  function comparable(d: V1Deployment, namespace: string): unknown {
    const spec = JSON.parse(JSON.stringify(d.spec).replaceAll(namespace, "NAMESPACE")) as NonNullable<
      V1Deployment["spec"]
    >;
    // The namespace is in the pods' environment, so the template's hash differs too.
    spec.template.metadata!.annotations![Annotations.templateHash] = "(differs with the namespace)";
    return spec;
  }

  it("removes every optional field from the Deployment when it is removed from the spec", async function () {
    this.timeout(240_000);
    await tb.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "scheduling.k8s.io/v1",
        kind: "PriorityClass",
        metadata: { name: "maas-test-models" },
        value: 1000,
      }),
    });
    const base: Spec = { model, replicas: 1, resources: { cpu: "100m", memory: "256Mi" } };
    const cases: { name: string; set: Spec; removed: Spec }[] = [
      { name: "sha256", set: { ...base, model: { ...model, sha256: "a".repeat(64) } }, removed: base },
      { name: "served-name", set: { ...base, model: { ...model, servedName: "other" } }, removed: base },
      { name: "version", set: { ...base, model: { ...model, version: "3" } }, removed: base },
      {
        name: "credentials",
        set: { ...base, model: { ...model, credentialsSecretRef: { name: "store" } } },
        removed: base,
      },
      {
        name: "gpu",
        set: { ...base, resources: { ...base.resources, gpu: { count: 1, product: gpuProducts.a10 } } },
        removed: base,
      },
      {
        name: "gpu-product",
        set: { ...base, resources: { ...base.resources, gpu: { count: 1, product: gpuProducts.a10 } } },
        removed: { ...base, resources: { ...base.resources, gpu: { count: 1 } } },
      },
      {
        name: "cpu",
        set: { ...base, resources: { cpu: "2", memory: "256Mi" } },
        removed: { ...base, resources: { memory: "256Mi" } },
      },
      { name: "memory", set: base, removed: { ...base, resources: { cpu: "100m" } } },
      { name: "node-selector", set: { ...base, scheduling: { nodeSelector: { disktype: "ssd" } } }, removed: base },
      {
        name: "tolerations",
        set: { ...base, scheduling: { tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }] } },
        removed: base,
      },
      {
        name: "affinity",
        set: {
          ...base,
          scheduling: {
            affinity: {
              nodeAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  { weight: 1, preference: { matchExpressions: [{ key: "type", operator: "In", values: ["kwok"] }] } },
                ],
              },
            },
          },
        },
        removed: base,
      },
      {
        name: "priority-class",
        set: { ...base, scheduling: { priorityClassName: "maas-test-models" } },
        removed: base,
      },
      { name: "backend", set: { ...base, serving: { backend: "wasm" } }, removed: base },
      { name: "workers", set: { ...base, serving: { workers: 2 } }, removed: base },
      { name: "batch-delay", set: { ...base, serving: { batching: { maxDelayMs: 5 } } }, removed: base },
      { name: "max-queue", set: { ...base, serving: { maxQueue: 10 } }, removed: base },
      { name: "request-timeout", set: { ...base, serving: { requestTimeoutMs: 1000 } }, removed: base },
      { name: "image", set: { ...base, image: "registry.example.com/maas-serving:other" }, removed: base },
    ];
    await Promise.all(
      cases.map(async (c) => {
        await applyMd(ns, c.name, c.set);
        const withField = comparable(await converged(ns, c.name), ns);
        await applyMd(ns, c.name, c.removed);
        const after = comparable(await converged(ns, c.name), ns);
        assert.notDeepEqual(after, withField, `${c.name}: the Deployment did not change when the field was removed`);
        // Built fresh from the final spec: the same name in another namespace.
        await applyMd(fresh, c.name, c.removed);
        assert.deepEqual(after, comparable(await converged(fresh, c.name), fresh), c.name);
      }),
    );
  });

  it("is not Ready while a new revision cannot be scheduled, though the previous one still serves", async function () {
    this.timeout(180_000);
    await createMd(tb, ns, manifest("stuck", { model, replicas: 1, resources: { cpu: "100m", memory: "256Mi" } }));
    await waitForCondition(tb, ns, "stuck", "Ready", "True");
    await patchMd(tb, ns, "stuck", { spec: { scheduling: { nodeSelector: { "maas.dev/nowhere": "true" } } } });
    const stuck = await waitForCondition(tb, ns, "stuck", "Ready", "False", 60_000, (md) =>
      /cannot be scheduled/.test(condition(md, "Ready")!.message),
    );
    const ready = condition(stuck, "Ready")!;
    assert.equal(ready.reason, "RolloutInProgress");
    assert.match(ready.message, /0\/1 replicas of it ready, 1 of the previous revision still serving: .*didn't match/);
    assert.equal(condition(stuck, "ModelAvailable")!.reason, "PreviousRevisionServing");
    const wait = await tb.kubectl(["-n", ns, "wait", "--for=condition=Ready", "md/stuck", "--timeout=5s"]);
    assert.notEqual(wait.code, 0, "kubectl wait must not pass while the rollout is stuck");
    const pods = await tb.core.listNamespacedPod({ namespace: ns, labelSelector: "maas.dev/deployment=stuck" });
    assert.equal(pods.items.filter((p) => p.status?.phase === "Running").length, 1, "the previous pod still runs");
    await patchMd(tb, ns, "stuck", { spec: { scheduling: null } });
    await waitForCondition(tb, ns, "stuck", "Ready", "True", 60_000);
  });

  it("reports an API server that fails to apply a child (a webhook that times out) and converges once it is gone", async function () {
    this.timeout(180_000);
    // An admission webhook on loopback that never answers: the API server gives up after a second
    // and answers the operator's apply with a 500.
    const hung: Server = createServer(
      { key: readFileSync(tb.pki.serverKey), cert: readFileSync(tb.pki.serverCert) },
      () => undefined,
    );
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const port = (hung.address() as { port: number }).port;
    const webhook = `maas-test-hang-${process.pid}`;
    const config = {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: webhook },
      webhooks: [
        {
          name: "hang.maas.dev",
          clientConfig: {
            url: `https://127.0.0.1:${port}/validate`,
            caBundle: readFileSync(tb.pki.caCert).toString("base64"),
          },
          rules: [
            { apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"] },
          ],
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
          objectSelector: { matchLabels: { "maas.dev/deployment": "webhooked" } },
          failurePolicy: "Fail",
          sideEffects: "None",
          admissionReviewVersions: ["v1"],
          timeoutSeconds: 1,
        },
      ],
    };
    const applied = await tb.kubectl(["apply", "-f", "-"], { input: JSON.stringify(config) });
    assert.equal(applied.code, 0, applied.stderr);
    try {
      await createMd(
        tb,
        ns,
        manifest("webhooked", { model, replicas: 1, resources: { cpu: "100m", memory: "256Mi" } }),
      );
      const failed = await waitForCondition(tb, ns, "webhooked", "Degraded", "True", 60_000);
      const degraded = condition(failed, "Degraded")!;
      assert.equal(degraded.reason, "ApplyFailed");
      assert.match(
        degraded.message,
        /^The API server failed to apply the Deployment \(500 InternalError\): .*hang\.maas\.dev.*; retrying with back-off$/,
      );
      assert.equal(condition(failed, "Ready")!.reason, "ReconcileFailed");
      await waitForEvents(tb, ns, "modeldeployment/webhooked", [/"reason": "ApplyFailed"/]);
    } finally {
      await tb.kubectl(["delete", "validatingwebhookconfiguration", webhook]);
      hung.closeAllConnections();
      hung.close();
    }
    const healed = await waitForCondition(tb, ns, "webhooked", "Ready", "True", 60_000);
    assert.equal(condition(healed, "Degraded")!.status, "False");
    assert.ok((await readMd(tb, ns, "webhooked")).status?.replicasSummary === "1/1");
  });
});
