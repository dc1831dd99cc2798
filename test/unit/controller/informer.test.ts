import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { Informer } from "../../../operator/src/controller/informer.ts";
import { KubeClient, type RequestOptions, type Verb } from "../../../operator/src/controller/kube-client.ts";
import type { WatchTransport } from "../../../operator/src/controller/watch.ts";
import { ApiError } from "../../../operator/src/controller/errors.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { Resources } from "../../../operator/src/controller/resources.ts";
import { FakeClock, flush } from "./fake-clock.ts";

/** Lists from a scripted sequence of answers instead of the network. */
class ScriptedClient extends KubeClient {
  lists: (() => unknown)[] = [];
  listCalls = 0;
  override request<T>(verb: Verb, _path: string, _options?: RequestOptions): Promise<T> {
    if (verb !== "list") return Promise.reject(new Error(`unexpected ${verb}`));
    this.listCalls++;
    const next = this.lists.shift();
    if (!next) return Promise.reject(new Error("no scripted list answer left"));
    try {
      return Promise.resolve(next() as T);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

interface Connection {
  query: Record<string, string | number | boolean | undefined>;
  event: (phase: string, obj: unknown) => void;
  end: (err: unknown) => void;
}

/** A watch transport the test drives: each connection is recorded and ended or fed by hand. */
class ScriptedWatch implements WatchTransport {
  connections: Connection[] = [];
  /** Connection attempts to refuse before they connect, like ECONNREFUSED. */
  refuse = 0;
  watch(
    _path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    this.connections.push({ query, event: callback, end: done });
    if (this.refuse > 0) {
      this.refuse--;
      done(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }));
    }
    return Promise.resolve(new AbortController());
  }
}

const access = { server: "https://127.0.0.1:1", token: "t", source: "a test" };

const cm = (name: string, rv: string): KubernetesObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", resourceVersion: rv },
});
const list =
  (rv: string, ...items: KubernetesObject[]) =>
  () => ({ metadata: { resourceVersion: rv }, items });
const serverError = () => {
  throw new ApiError("list", "/api/v1/configmaps", 500, "InternalError", "etcd unavailable");
};

function setup() {
  const clock = new FakeClock();
  const metrics = new OperatorMetrics();
  const client = new ScriptedClient(access);
  const transport = new ScriptedWatch();
  const informer = new Informer({
    client,
    resource: Resources.ConfigMap,
    log: silentLogger(),
    metrics,
    clock,
    restartBackoffMs: { base: 1_000, max: 8_000 },
    unhealthyAfterMs: 2_500,
    staleAfterMs: 60_000,
    watchFactory: () => transport,
  });
  const restarts = async (reason: string) =>
    (await metrics.watchRestarts.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
  return { clock, client, transport, informer, restarts };
}

describe("Informer restart machinery (scripted transport)", () => {
  it("keeps retrying a failing initial list with doubling back-off and reports synced once it succeeds", async () => {
    const t = setup();
    t.client.lists = [serverError, serverError, serverError, list("10", cm("a", "9"))];
    t.informer.start();
    await flush();
    assert.equal(t.client.listCalls, 1);
    assert.equal(t.informer.hasSynced(), false);
    assert.match(t.informer.health().message, /not synced yet: list .*500 InternalError/);
    const callsAt: number[] = [];
    for (let ms = 0; ms <= 8_000; ms += 100) {
      const before = t.client.listCalls;
      t.clock.advance(100);
      await flush();
      if (t.client.listCalls > before) callsAt.push(ms + 100);
    }
    assert.deepEqual(callsAt, [1_000, 3_000, 7_000], "retries after 1 s, 2 s, 4 s");
    assert.equal(t.informer.hasSynced(), true);
    assert.equal(t.informer.get("ns", "a")?.metadata?.resourceVersion, "9");
    assert.equal(await t.restarts("error"), 3);
    assert.equal(t.informer.health().ok, true);
    await t.informer.stop();
  });

  it("restarts a watch that ended with an error from its last resourceVersion, without relisting", async () => {
    const t = setup();
    t.client.lists = [list("10", cm("a", "9"))];
    t.informer.start();
    await flush();
    assert.equal(t.transport.connections.length, 1);
    t.transport.connections[0]!.event("MODIFIED", cm("a", "11"));
    t.transport.connections[0]!.end(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    await flush();
    assert.equal(t.informer.health().ok, true, "a short failure is not yet unhealthy");
    t.clock.advance(1_000);
    await flush();
    assert.equal(t.transport.connections.length, 2);
    assert.equal(t.transport.connections[1]!.query.resourceVersion, "11");
    assert.equal(t.client.listCalls, 1);
    assert.equal(await t.restarts("error"), 1);
    await t.informer.stop();
  });

  it("reports unhealthy while a watch keeps failing past the threshold, and healthy after it reconnects", async () => {
    const t = setup();
    t.client.lists = [list("10")];
    t.informer.start();
    await flush();
    t.transport.refuse = 3;
    t.transport.connections[0]!.end(new Error("read ECONNRESET"));
    // Back-off 1 s, 2 s, 4 s: refused reconnects at +1 s, +3 s and +7 s; the next comes at +15 s.
    for (let i = 0; i < 10; i++) {
      t.clock.advance(1_000);
      await flush();
    }
    assert.equal(t.transport.connections.length, 4, "three refused reconnects");
    const health = t.informer.health();
    assert.equal(health.ok, false);
    assert.match(
      health.message,
      /configmaps: watch of configmaps in all namespaces failing for \d+s: connect ECONNREFUSED/,
    );
    t.clock.advance(5_000);
    await flush();
    assert.equal(t.transport.connections.length, 5);
    assert.equal(t.informer.health().ok, true, "the new connection came up");
    await t.informer.stop();
  });

  it("restarts a watch that went quiet, and ignores the abandoned connection's late end", async () => {
    const t = setup();
    t.client.lists = [list("10")];
    t.informer.start();
    await flush();
    t.clock.advance(75_000);
    await flush();
    assert.equal(await t.restarts("stale"), 1);
    assert.equal(t.transport.connections.length, 2, "a fresh connection replaced the quiet one");
    t.transport.connections[0]!.end(new Error("aborted"));
    await flush();
    assert.equal(await t.restarts("error"), 0, "the old connection ending is not a failure");
    assert.equal(t.transport.connections.length, 2, "and does not start a third watch");
    await t.informer.stop();
  });

  it("leaves a list that is still under way alone, however quiet things are, so only one watch starts", async () => {
    const t = setup();
    let answer: (value: unknown) => void = () => undefined;
    t.client.lists = [() => new Promise((resolve) => (answer = resolve))];
    t.informer.start();
    await flush();
    t.clock.advance(200_000);
    await flush();
    assert.equal(t.client.listCalls, 1, "the watchdog started no second list");
    assert.equal(await t.restarts("stale"), 0);
    answer(list("10", cm("a", "9"))());
    await flush();
    assert.equal(t.informer.hasSynced(), true);
    assert.equal(t.transport.connections.length, 1, "one watch");
    await t.informer.stop();
  });

  it("counts a 410 Gone and relists", async () => {
    const t = setup();
    t.client.lists = [list("10", cm("a", "9"), cm("b", "9")), list("20", cm("a", "9"))];
    const deleted: string[] = [];
    t.informer.onEvent((obj, event) => {
      if (event === "delete") deleted.push(obj.metadata?.name ?? "");
    });
    t.informer.start();
    await flush();
    t.transport.connections[0]!.event("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    t.transport.connections[0]!.end(null);
    await flush();
    assert.equal(await t.restarts("expired"), 1);
    assert.equal(t.client.listCalls, 2);
    assert.deepEqual(deleted, ["b"], "the relist tells handlers about objects that vanished");
    await t.informer.stop();
  });

  it("stops for good: no restart fires after stop, even mid back-off", async () => {
    const t = setup();
    t.client.lists = [list("10")];
    t.informer.start();
    await flush();
    t.transport.connections[0]!.end(new Error("boom"));
    await flush();
    await t.informer.stop();
    t.clock.advance(120_000);
    await flush();
    assert.equal(t.transport.connections.length, 1);
    assert.equal(t.clock.pendingTimers, 0, "no timer left behind");
  });
});
