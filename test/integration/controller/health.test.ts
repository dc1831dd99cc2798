import assert from "node:assert/strict";
import { startHealthServer, type HealthServer } from "../../../operator/src/controller/health.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";

describe("Health server", () => {
  let server: HealthServer;
  const state = { synced: false, throws: false };
  const metrics = new OperatorMetrics().withProcessMetrics();
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

  before(async () => {
    server = await startHealthServer({
      port: 0,
      host: "127.0.0.1",
      registry: metrics.registry,
      log: silentLogger(),
      readiness: [
        {
          name: "informers",
          check: () => ({ ok: state.synced, message: state.synced ? "synced" : "modeldeployments not synced yet" }),
        },
        {
          name: "leader-election",
          check: () => {
            if (state.throws) throw new Error("lease state unreadable");
            return { ok: true, message: "standby (holder: other)" };
          },
        },
      ],
    });
  });

  after(() => server.close());

  it("answers /healthz while the process runs, whatever readiness says", async () => {
    const response = await fetch(url("/healthz"));
    assert.equal(response.status, 200);
  });

  it("fails /readyz with the failing check's message until caches have synced", async () => {
    const notReady = await fetch(url("/readyz"));
    assert.equal(notReady.status, 503);
    assert.match(await notReady.text(), /\[-\]informers: modeldeployments not synced yet/);
    state.synced = true;
    const ready = await fetch(url("/readyz"));
    assert.equal(ready.status, 200);
    assert.doesNotMatch(await ready.text(), /\[\+\]/, "passing checks are listed only with ?verbose");
    assert.match(await (await fetch(url("/readyz?verbose"))).text(), /\[\+\]leader-election: standby/);
  });

  it("treats a check that throws as failing instead of answering 500", async () => {
    state.throws = true;
    const response = await fetch(url("/readyz"));
    assert.equal(response.status, 503);
    assert.match(await response.text(), /leader-election: check threw: lease state unreadable/);
    state.throws = false;
  });

  it("serves the operator's metrics in Prometheus text format", async () => {
    metrics.reconciles.inc({ controller: "md", result: "done" });
    const response = await fetch(url("/metrics"));
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.match(text, /maas_operator_reconcile_total\{controller="md",result="done"\} 1/);
    assert.match(text, /maas_operator_process_resident_memory_bytes/);
  });

  it("answers 404 for unknown paths and 405 for writes", async () => {
    assert.equal((await fetch(url("/nope"))).status, 404);
    assert.equal((await fetch(url("/healthz"), { method: "POST" })).status, 405);
  });
});
