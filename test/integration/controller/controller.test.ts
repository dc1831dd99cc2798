import assert from "node:assert/strict";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { applyObject } from "../../../operator/src/controller/apply.ts";
import { Controller } from "../../../operator/src/controller/controller.ts";
import { Informer, ManagedByLabel, managedBySelector } from "../../../operator/src/controller/informer.ts";
import { controllerOwnerKey, keyOf } from "../../../operator/src/controller/keys.ts";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { loadKubeconfig } from "../../../operator/src/controller/kubeconfig.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { done, type ObjectKey, type Reconciler } from "../../../operator/src/controller/reconciler.ts";
import { Resources, collectionPath, objectPath } from "../../../operator/src/controller/resources.ts";
import { WorkQueue } from "../../../operator/src/controller/work-queue.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";

/**
 * The whole runtime wired the way main.ts wires it, with ConfigMaps standing in for the
 * ModelDeployment (a "parent" ConfigMap) and its children (a "<name>-child" ConfigMap it owns).
 */
describe("Controller runtime end to end against a real API server", function () {
  const user = "maas-runtime-test";
  let tb: Testbed;
  let admin: KubeClient;
  let ns: string;
  let parents: Informer<V1ConfigMap>;
  let children: Informer<V1ConfigMap>;
  let stop: AbortController;
  let running: Promise<void>;
  let reconciles = 0;

  /** Copies the parent's data into an owned child; writes only when the cached child differs. */
  function childReconciler(client: KubeClient): Reconciler {
    return {
      async reconcile(key: ObjectKey, signal: AbortSignal) {
        reconciles++;
        const parent = parents.get(key.namespace, key.name);
        if (!parent) return done;
        const name = `${key.name}-child`;
        const observed = children.get(key.namespace, name);
        if (observed && JSON.stringify(observed.data ?? {}) === JSON.stringify(parent.data ?? {})) return done;
        await applyObject(
          client,
          Resources.ConfigMap,
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: {
              name,
              namespace: key.namespace,
              labels: { [ManagedByLabel.key]: ManagedByLabel.value },
              ownerReferences: [
                { apiVersion: "v1", kind: "ConfigMap", name: key.name, uid: parent.metadata!.uid!, controller: true },
              ],
            },
            data: { ...parent.data },
          },
          { signal },
        );
        return done;
      },
    };
  }

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    admin = new KubeClient(tb.access);
    ns = await tb.createNamespace("runtime");
    const metrics = new OperatorMetrics();
    const client = new KubeClient(loadKubeconfig(await tb.kubeconfigForUser(user, ["system:masters"])), { metrics });
    const log = silentLogger();
    parents = new Informer({
      client,
      resource: Resources.ConfigMap,
      namespaces: [ns],
      labelSelector: "role=parent",
      log,
      metrics,
      freeze: true,
    });
    children = new Informer({
      client,
      resource: Resources.ConfigMap,
      namespaces: [ns],
      labelSelector: managedBySelector,
      log,
      metrics,
      freeze: true,
    });
    const queue = new WorkQueue({ metrics: metrics.workQueue("parent") });
    parents.onEvent((obj) => {
      queue.add(keyOf(obj));
    });
    children.onEvent((obj) => {
      const owner = controllerOwnerKey(obj, "", "ConfigMap");
      if (owner) queue.add(owner);
    });
    const controller = new Controller({
      name: "parent",
      queue,
      informers: [parents, children],
      reconciler: childReconciler(client),
      workers: 2,
      log,
      metrics,
    });
    parents.start();
    children.start();
    stop = new AbortController();
    running = controller.run(stop.signal);
  });

  after(async () => {
    stop?.abort();
    await running;
    await parents?.stop();
    await children?.stop();
  });

  const parentPath = (name: string) => objectPath(Resources.ConfigMap, ns, name);
  const readChild = (name: string) =>
    admin.get<V1ConfigMap>(objectPath(Resources.ConfigMap, ns, `${name}-child`)).catch(() => undefined);

  it("creates the child of a new parent", async () => {
    await admin.request("create", collectionPath(Resources.ConfigMap, ns), {
      body: { metadata: { name: "p1", namespace: ns, labels: { role: "parent" } }, data: { model: "v1" } },
    });
    const child = await tb.waitFor("p1-child", () => readChild("p1"));
    assert.deepEqual(child.data, { model: "v1" });
  });

  it("follows a change of the parent", async () => {
    await admin.request("patch", parentPath("p1"), {
      body: { data: { model: "v2" } },
      contentType: "application/merge-patch+json",
    });
    await tb.waitFor("p1-child at v2", async () => (await readChild("p1"))?.data?.model === "v2");
  });

  it("repairs a child someone else edited, triggered by the child's own watch", async () => {
    await admin.request("patch", objectPath(Resources.ConfigMap, ns, "p1-child"), {
      body: { data: { model: "tampered" } },
      contentType: "application/merge-patch+json",
    });
    await tb.waitFor("p1-child repaired", async () => (await readChild("p1"))?.data?.model === "v2");
  });

  it("makes no writes at rest, counted in the API server's audit log", async () => {
    const since = new Date();
    const reconcilesBefore = reconciles;
    // A no-op change to the parent's labels makes it reconcile again with nothing to do.
    await admin.request("patch", parentPath("p1"), {
      body: { metadata: { labels: { touched: "yes" } } },
      contentType: "application/merge-patch+json",
    });
    await tb.waitFor("a reconcile of the touched parent", () => Promise.resolve(reconciles > reconcilesBefore));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const writes = await tb.auditEvents({ user, since, verbs: ["create", "update", "patch", "delete"] });
    assert.deepEqual(
      writes.map((w) => `${w.verb} ${w.objectRef?.name}`),
      [],
    );
    const earlier = await tb.auditEvents({ user, verbs: ["patch"] });
    assert.ok(earlier.length >= 3, "the audit log does see this identity's writes (create, follow, repair)");
  });
});
