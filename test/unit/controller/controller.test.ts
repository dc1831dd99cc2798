import assert from "node:assert/strict";
import { Controller, type SyncSource } from "../../../operator/src/controller/controller.ts";
import { ApiError, PermanentError, TemporaryError } from "../../../operator/src/controller/errors.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { ItemExponentialBackoff } from "../../../operator/src/controller/rate-limiter.ts";
import {
  done,
  requeueAfter,
  type ObjectKey,
  type ReconcileResult,
} from "../../../operator/src/controller/reconciler.ts";
import { WorkQueue } from "../../../operator/src/controller/work-queue.ts";
import { FakeClock, flush } from "./fake-clock.ts";

class ManualSync implements SyncSource {
  synced = false;
  #waiters: (() => void)[] = [];
  hasSynced(): boolean {
    return this.synced;
  }
  waitForSync(): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) =>
      this.#waiters.push(() => {
        resolve(true);
      }),
    );
  }
  sync(): void {
    this.synced = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}

type Step = () => Promise<ReconcileResult>;

function setup(script: Record<string, Step[]>) {
  const clock = new FakeClock();
  const metrics = new OperatorMetrics();
  const queue = new WorkQueue({
    clock,
    rateLimiter: new ItemExponentialBackoff(100, 10_000),
    metrics: metrics.workQueue("md"),
  });
  const calls: { key: string; at: number }[] = [];
  const terminal: { key: ObjectKey; error: unknown }[] = [];
  const informers = [new ManualSync(), new ManualSync()];
  const controller = new Controller({
    name: "md",
    queue,
    informers,
    workers: 2,
    clock,
    metrics,
    log: silentLogger(),
    reconciler: {
      reconcile: (key) => {
        const id = `${key.namespace}/${key.name}`;
        calls.push({ key: id, at: clock.now() });
        const step = script[id]?.shift();
        return step ? step() : Promise.resolve(done);
      },
    },
    onTerminalError: (key, error) => {
      terminal.push({ key, error });
      return Promise.resolve();
    },
  });
  const stop = new AbortController();
  const running = controller.run(stop.signal);
  const callsOf = (key: string) => calls.filter((c) => c.key === key);
  const result = async (value: string) => {
    const metric = await metrics.reconciles.get();
    return metric.values.find((v) => v.labels.result === value)?.value ?? 0;
  };
  const settle = async (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(50);
      await flush();
    }
  };
  return { clock, queue, calls, callsOf, terminal, informers, stop, running, result, settle };
}

describe("Controller", () => {
  it("starts workers only after every informer has synced", async () => {
    const t = setup({});
    t.queue.add("ns/a");
    await flush();
    t.informers[0]!.sync();
    await flush();
    assert.equal(t.calls.length, 0, "one informer is still listing");
    t.informers[1]!.sync();
    await flush();
    assert.deepEqual(t.callsOf("ns/a").length, 1);
    t.stop.abort();
    await t.running;
  });

  it("forgets a key that reconciled to done and does not call it again", async () => {
    const t = setup({});
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(60_000);
    assert.equal(t.callsOf("ns/a").length, 1);
    assert.equal(await t.result("done"), 1);
    t.stop.abort();
    await t.running;
  });

  it("calls again after the requested delay on requeueAfter", async () => {
    const t = setup({ "ns/a": [() => Promise.resolve(requeueAfter(5_000))] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(10_000);
    const calls = t.callsOf("ns/a");
    assert.equal(calls.length, 2);
    assert.equal(calls[1]!.at - calls[0]!.at, 5_000);
    assert.equal(await t.result("requeue_after"), 1);
    t.stop.abort();
    await t.running;
  });

  it("retries a failing key with growing back-off and resets it after a success", async () => {
    const fail = () => Promise.reject(new Error("api server unreachable"));
    const t = setup({ "ns/a": [fail, fail, fail] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(5_000);
    const at = t.callsOf("ns/a").map((c) => c.at);
    assert.equal(at.length, 4, "three failures, then success");
    assert.deepEqual([at[1]! - at[0]!, at[2]! - at[1]!, at[3]! - at[2]!], [100, 200, 400]);
    assert.equal(t.queue.retries("ns/a"), 0, "the success forgot the back-off");
    assert.equal(await t.result("retry"), 3);
    t.stop.abort();
    await t.running;
  });

  it("retries after the delay a TemporaryError asks for", async () => {
    const t = setup({ "ns/a": [() => Promise.reject(new TemporaryError("waiting for pods", 3_000))] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(5_000);
    const at = t.callsOf("ns/a").map((c) => c.at);
    assert.equal(at[1]! - at[0]!, 3_000);
    t.stop.abort();
    await t.running;
  });

  it("retries a 409 Conflict and counts it as a conflict, not a failure", async () => {
    const conflict = () =>
      Promise.reject(new ApiError("update", "/x", 409, "Conflict", "the object has been modified"));
    const t = setup({ "ns/a": [conflict] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(1_000);
    assert.equal(t.callsOf("ns/a").length, 2);
    assert.equal(await t.result("conflict"), 1);
    assert.equal(await t.result("retry"), 0);
    t.stop.abort();
    await t.running;
  });

  it("stops retrying after a PermanentError and hands it to onTerminalError once", async () => {
    const error = new PermanentError(
      "ChildNotOwned",
      "Deployment ml/a exists and is not owned by ModelDeployment ml/a",
    );
    const t = setup({ "ns/a": [() => Promise.reject(error)] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await t.settle(60_000);
    assert.equal(t.callsOf("ns/a").length, 1);
    assert.deepEqual(t.terminal, [{ key: { namespace: "ns", name: "a" }, error }]);
    assert.equal(await t.result("terminal"), 1);
    t.stop.abort();
    await t.running;
  });

  it("on stop lets an in-flight reconcile finish and then returns", async () => {
    let finish!: () => void;
    const slow = () =>
      new Promise<ReconcileResult>(
        (resolve) =>
          (finish = () => {
            resolve(done);
          }),
      );
    const t = setup({ "ns/a": [slow] });
    t.informers.forEach((i) => {
      i.sync();
    });
    t.queue.add("ns/a");
    await flush();
    let returned = false;
    t.stop.abort();
    void t.running.then(() => (returned = true));
    await flush();
    assert.equal(returned, false, "still waiting for ns/a");
    finish();
    await t.running;
    assert.equal(returned, true);
  });
});
