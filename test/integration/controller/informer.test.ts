import assert from "node:assert/strict";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { Informer, managedBySelector, ManagedByLabel } from "../../../operator/src/controller/informer.ts";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { HttpWatch, type WatchCallback, type WatchDone } from "../../../operator/src/controller/watch.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { Resources, collectionPath, objectPath } from "../../../operator/src/controller/resources.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { TcpProxy } from "./fixtures/tcp-proxy.ts";

/**
 * The operator's watch transport, except that the connection after `expireNext()` is answered the way the
 * API server answers a watch from a compacted resourceVersion: an ERROR event carrying a 410
 * "Expired" Status, then the end of the stream. (This API server serves old resourceVersions from
 * its watch cache, so a real 410 would need minutes of churn; the relist that follows is real.)
 */
class ExpiringWatch extends HttpWatch {
  #expire = false;
  expireNext(): void {
    this.#expire = true;
  }
  override watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
    if (!this.#expire) return super.watch(path, query, callback, done);
    this.#expire = false;
    const status = {
      kind: "Status",
      apiVersion: "v1",
      status: "Failure",
      reason: "Expired",
      code: 410,
      message: `too old resource version: ${String(query.resourceVersion)}`,
    };
    setImmediate(() => {
      callback("ERROR", status, { type: "ERROR", object: status });
      done(null);
    });
    return Promise.resolve(new AbortController());
  }
}

async function restarts(metrics: OperatorMetrics, reason: string): Promise<number> {
  const metric = await metrics.watchRestarts.get();
  return metric.values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

/** Wraps a synchronous condition for `waitFor`. */
const sync =
  <T>(fn: () => T) =>
  (): Promise<T> =>
    Promise.resolve(fn());

describe("Informer against a real API server", function () {
  let tb: Testbed;
  let admin: KubeClient;
  let proxy: TcpProxy;
  let ns: string;
  let informer: Informer<V1ConfigMap>;
  let metrics: OperatorMetrics;
  let watch: ExpiringWatch;
  const seen: string[] = [];

  const configMap = (name: string, data: Record<string, string>, managed = true) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name,
      namespace: ns,
      labels: managed ? { [ManagedByLabel.key]: ManagedByLabel.value } : { app: "other" },
    },
    data,
  });
  const create = (obj: ReturnType<typeof configMap>) =>
    admin.request("create", collectionPath(Resources.ConfigMap, ns), { body: obj });
  const remove = (name: string) => admin.request("delete", objectPath(Resources.ConfigMap, ns, name));

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    admin = new KubeClient(tb.access);
    ns = await tb.createNamespace("informer");
    proxy = await TcpProxy.start(tb.kc.getCurrentCluster()!.server);
    metrics = new OperatorMetrics();
    informer = new Informer<V1ConfigMap>({
      client: new KubeClient(proxy.accessThrough(tb.access), { metrics, timeoutMs: 5_000 }),
      resource: Resources.ConfigMap,
      namespaces: [ns],
      labelSelector: managedBySelector,
      log: silentLogger(),
      metrics,
      restartBackoffMs: { base: 200, max: 1_000 },
      unhealthyAfterMs: 300,
      freeze: true,
      watchFactory: (client) => (watch = new ExpiringWatch(client)),
    });
    informer.onEvent((obj, event) => seen.push(`${event} ${obj.metadata?.name}`));
    await create(configMap("before-start", { a: "1" }));
    informer.start();
    assert.equal(await informer.waitForSync(), true);
  });

  after(async () => {
    await informer?.stop();
    await proxy?.close();
  });

  it("lists existing objects before it reports synced", () => {
    assert.ok(informer.hasSynced());
    assert.equal(informer.get(ns, "before-start")?.data?.a, "1");
    assert.ok(seen.includes("add before-start"));
  });

  it("sees creates, updates and deletes of labelled objects, and only those", async () => {
    await create(configMap("unmanaged", { x: "1" }, false));
    await create(configMap("c1", { v: "1" }));
    await tb.waitFor(
      "c1 in cache",
      sync(() => informer.get(ns, "c1")),
    );
    await admin.request("patch", objectPath(Resources.ConfigMap, ns, "c1"), {
      body: { data: { v: "2" } },
      contentType: "application/merge-patch+json",
    });
    await tb.waitFor(
      "c1 updated in cache",
      sync(() => informer.get(ns, "c1")?.data?.v === "2"),
    );
    await remove("c1");
    await tb.waitFor(
      "c1 gone from cache",
      sync(() => informer.get(ns, "c1") === undefined),
    );
    assert.deepEqual(
      seen.filter((s) => s.endsWith(" c1")),
      ["add c1", "update c1", "delete c1"],
    );
    assert.equal(
      informer.get(ns, "unmanaged"),
      undefined,
      "the label selector keeps unmanaged objects out of the cache",
    );
    assert.deepEqual(
      informer.list(ns, { [ManagedByLabel.key]: ManagedByLabel.value }).map((c) => c.metadata?.name),
      ["before-start"],
    );
  });

  it("hands out frozen objects, so a reader that mutates the cache fails loudly", () => {
    const cached = informer.get(ns, "before-start")!;
    assert.throws(() => {
      cached.data!.a = "changed";
    }, TypeError);
  });

  it("restarts a broken watch with back-off, reports it unhealthy meanwhile, and catches up on what it missed", async () => {
    const errorsBefore = await restarts(metrics, "error");
    proxy.block();
    // While the operator is cut off: a new object appears and an old one is deleted.
    await create(configMap("during-outage", { v: "1" }));
    await remove("before-start");
    await tb.waitFor(
      "the informer to notice the outage",
      async () => (await restarts(metrics, "error")) > errorsBefore,
    );
    await tb.waitFor(
      "readiness to fail",
      sync(() => !informer.health().ok),
    );
    assert.match(informer.health().message, /failing for/);

    proxy.unblock();
    await tb.waitFor(
      "the missed create",
      sync(() => informer.get(ns, "during-outage")),
      30_000,
    );
    await tb.waitFor(
      "the missed delete",
      sync(() => informer.get(ns, "before-start") === undefined),
      30_000,
    );
    assert.ok(
      seen.includes("delete before-start"),
      "handlers were told about the delete that happened during the outage",
    );
    await tb.waitFor(
      "readiness to recover",
      sync(() => informer.health().ok),
    );
  });

  it("relists after 410 Gone, seeing deletes it missed, and still sees later changes", async () => {
    const expiredBefore = await restarts(metrics, "expired");
    proxy.block();
    await remove("during-outage");
    watch.expireNext();
    proxy.unblock();
    await tb.waitFor("a 410 and a relist", async () => (await restarts(metrics, "expired")) > expiredBefore, 30_000);
    await tb.waitFor(
      "the delete seen by the relist",
      sync(() => informer.get(ns, "during-outage") === undefined),
      30_000,
    );
    assert.ok(seen.includes("delete during-outage"));
    await create(configMap("after-relist", { v: "1" }));
    await tb.waitFor(
      "a change after the relist",
      sync(() => informer.get(ns, "after-relist")),
      30_000,
    );
    assert.ok(informer.health().ok);
  });

  it("counts its API requests by verb and code", async () => {
    const metric = await metrics.apiRequests.get();
    const lists = metric.values.find((v) => v.labels.verb === "list" && v.labels.code === "200");
    assert.ok(lists && lists.value >= 2, "the initial list and at least one relist");
  });
});
