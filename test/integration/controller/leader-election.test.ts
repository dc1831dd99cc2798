import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { LeaderElector, type Lease, type StopReason } from "../../../operator/src/controller/leader-election.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { Resources, objectPath } from "../../../operator/src/controller/resources.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";

const electorScript = fileURLToPath(new URL("./fixtures/elector.ts", import.meta.url));

interface Candidate {
  elector: LeaderElector;
  started: number[];
  stopped: StopReason[];
  run: Promise<void>;
}

/** Wraps a synchronous condition for `waitFor`. */
const sync =
  <T>(fn: () => T) =>
  (): Promise<T> =>
    Promise.resolve(fn());

describe("Lease leader election against a real API server", function () {
  let tb: Testbed;
  let client: KubeClient;
  let ns: string;
  let leaseCounter = 0;
  const children: ChildProcess[] = [];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    client = new KubeClient(tb.access);
    ns = await tb.createNamespace("leader");
  });

  after(() => {
    for (const child of children) child.kill("SIGKILL");
  });

  const readLease = (name: string) => client.get<Lease>(objectPath(Resources.Lease, ns, name));

  function candidate(
    lease: string,
    identity: string,
    timing: { lease: number; renew: number; retry: number },
    work?: (signal: AbortSignal) => Promise<void>,
    through: KubeClient = client,
  ): Candidate {
    const started: number[] = [];
    const stopped: StopReason[] = [];
    const elector = new LeaderElector({
      client: through,
      namespace: ns,
      name: lease,
      identity,
      leaseDurationMs: timing.lease,
      renewDeadlineMs: timing.renew,
      retryPeriodMs: timing.retry,
      log: silentLogger(),
      metrics: new OperatorMetrics(),
      onStartedLeading: (signal) => {
        started.push(Date.now());
        return work?.(signal);
      },
      onStoppedLeading: (reason) => stopped.push(reason),
    });
    return { elector, started, stopped, run: elector.run() };
  }

  it("lets exactly one of two candidates lead, and records it as the Lease holder", async () => {
    const lease = `le-${++leaseCounter}`;
    const timing = { lease: 4_000, renew: 3_000, retry: 300 };
    const a = candidate(lease, "a", timing);
    const b = candidate(lease, "b", timing);
    const leader = await tb.waitFor(
      "a leader",
      sync(() => [a, b].find((c) => c.elector.isLeader())),
    );
    // Sample for longer than a lease duration: never two leaders, never a change of leader.
    for (let i = 0; i < 50; i++) {
      assert.equal([a, b].filter((c) => c.elector.isLeader()).length, 1);
      assert.ok(leader.elector.isLeader());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const holder = (await readLease(lease)).spec?.holderIdentity;
    assert.equal(holder, leader.elector.identity);
    assert.equal(a.started.length + b.started.length, 1);
    await a.elector.stop();
    await b.elector.stop();
  });

  it("hands over at once when the leader releases the lease on shutdown", async () => {
    const lease = `le-${++leaseCounter}`;
    // A long lease: a standby that waited for expiry instead of seeing the release would take 20 s.
    const timing = { lease: 20_000, renew: 15_000, retry: 300 };
    const a = candidate(lease, "a", timing);
    await tb.waitFor(
      "a to lead",
      sync(() => a.elector.isLeader()),
    );
    const b = candidate(lease, "b", timing);
    await tb.waitFor(
      "b to stand by",
      async () => (await readLease(lease)).spec?.holderIdentity === "a" && !b.elector.isLeader(),
    );

    const releasedAt = Date.now();
    await a.elector.stop();
    assert.deepEqual(a.stopped, ["released"]);
    const released = await readLease(lease);
    assert.equal(released.spec?.holderIdentity, "", "release empties the holder");
    await tb.waitFor(
      "b to take over",
      sync(() => b.elector.isLeader()),
      10_000,
    );
    const handover = b.started[0]! - releasedAt;
    assert.ok(
      handover < timing.lease / 2,
      `handover took ${handover} ms: b waited for expiry instead of taking the released lease`,
    );
    assert.equal((await readLease(lease)).spec?.leaseTransitions, 1);
    await b.elector.stop();
  });

  it("releases the lease on shutdown only after the leader's work has drained", async () => {
    const lease = `le-${++leaseCounter}`;
    const timing = { lease: 20_000, renew: 15_000, retry: 300 };
    let drainedAt = 0;
    const work = (signal: AbortSignal) =>
      new Promise<void>((resolve) => {
        // Like a controller finishing its in-flight reconciles after the signal aborts.
        signal.addEventListener("abort", () =>
          setTimeout(() => {
            drainedAt = Date.now();
            resolve();
          }, 1_000),
        );
      });
    const a = candidate(lease, "a", timing, work);
    await tb.waitFor(
      "a to lead",
      sync(() => a.elector.isLeader()),
    );
    await a.elector.stop();
    const released = await readLease(lease);
    assert.equal(released.spec?.holderIdentity, "");
    assert.ok(drainedAt > 0, "stop returned before the work drained");
    assert.ok(Date.parse(released.spec.renewTime!) >= drainedAt - 5, "the lease was released before the work drained");
  });

  it("releases the lease even when a renew it gave up on reached the API server (its copy stale)", async () => {
    const lease = `le-${++leaseCounter}`;
    const timing = { lease: 20_000, renew: 15_000, retry: 300 };
    // Like a renew aborted by the shutdown after it was sent: the API server stores it, the leader
    // never sees the answer, so the resourceVersion it holds is one behind.
    let loseNextAnswer = false;
    let lostAnswers = 0;
    const losing = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== "request") return Reflect.get(target, prop, receiver) as unknown;
        return async (verb: string, path: string, options?: object) => {
          const answer = await target.request(verb as "update", path, options);
          if (verb === "update" && loseNextAnswer) {
            loseNextAnswer = false;
            lostAnswers++;
            throw new Error("The operation was aborted");
          }
          return answer;
        };
      },
    });
    const a = candidate(lease, "a", timing, undefined, losing);
    await tb.waitFor(
      "a to lead",
      sync(() => a.elector.isLeader()),
    );
    loseNextAnswer = true;
    await tb.waitFor(
      "a renew whose answer is lost",
      sync(() => lostAnswers === 1),
    );
    await a.elector.stop();
    assert.deepEqual(a.stopped, ["released"]);
    assert.equal((await readLease(lease)).spec?.holderIdentity, "", "the stale copy's 409 left the lease held");
  });

  it("hands over within the lease duration when the holder is killed and stops renewing", async () => {
    const lease = `le-${++leaseCounter}`;
    const timing = { lease: 4_000, renew: 3_000, retry: 300 };
    const child = spawn(process.execPath, [electorScript, tb.kubeconfig, ns, lease, "doomed", "4000", "3000", "300"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push(child);
    const lines = createInterface(child.stdout);
    await new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => {
        if (line.includes('"started"')) resolve();
      });
      child.once("exit", (code) => {
        reject(new Error(`elector process exited with ${code} before leading`));
      });
    });
    const b = candidate(lease, "b", timing);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(b.elector.isLeader(), false, "the live holder keeps its lease");

    child.kill("SIGKILL");
    const killedAt = Date.now();
    await tb.waitFor(
      "b to take over",
      sync(() => b.elector.isLeader()),
      15_000,
    );
    const takeover = b.started[0]! - killedAt;
    // The lease's last renewal was at most one retry period before the kill; b needs to see it
    // unchanged for a full lease duration, checking every retry period (with jitter up to 2.2×).
    assert.ok(takeover <= timing.lease + 3 * timing.retry + 1_000, `takeover took ${takeover} ms`);
    assert.ok(
      takeover >= timing.lease - timing.retry - 500,
      `takeover after ${takeover} ms: b took a lease that was still valid`,
    );
    assert.equal((await readLease(lease)).spec?.holderIdentity, "b");
    await b.elector.stop();
  });

  it("stops leading when someone else takes the lease, reporting it as lost", async () => {
    const lease = `le-${++leaseCounter}`;
    const a = candidate(lease, "a", { lease: 4_000, renew: 3_000, retry: 300 });
    await tb.waitFor(
      "a to lead",
      sync(() => a.elector.isLeader()),
    );
    // An administrator (or a buggy second operator) overwrites the holder.
    const current = await readLease(lease);
    await client.request("update", objectPath(Resources.Lease, ns, lease), {
      body: { ...current, spec: { ...current.spec, holderIdentity: "intruder", leaseDurationSeconds: 60 } },
    });
    await a.run;
    assert.deepEqual(a.stopped, ["lost"]);
    assert.equal(a.elector.isLeader(), false);
  });
});
