import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { installCrd, OPERATOR_NAMESPACE, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { createMd, manifest, model, waitForCondition, writesBy } from "./helpers.ts";

const lease = { durationS: 6, renewS: 4, retryS: 1 };
const leaseArgs = [
  `--lease-duration-seconds=${lease.durationS}`,
  `--renew-deadline-seconds=${lease.renewS}`,
  `--retry-period-seconds=${lease.retryS}`,
];

describe("operator: crashes, restarts and leader election", function () {
  let tb: Testbed;
  const running: OperatorProcess[] = [];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
    await installCrd(tb);
  });

  afterEach(async function () {
    for (const op of running.splice(0)) await op.kill9();
  });

  /** Starts two replicas as different users; `a` is running (and leading) before `b` starts. */
  async function leaderAndStandby(id: string, ns: string, tag: string) {
    const start = (replica: string) =>
      startOperator(tb, {
        name: `${tag}-${replica}`,
        user: `maas-operator-${replica}`,
        args: [...leaseArgs, `--leader-election-id=${id}`, `--namespaces=${ns}`],
      });
    const a = await start("a");
    running.push(a);
    await tb.waitFor("a leader", async () => (await holder(id)) !== "", 30_000);
    const b = await start("b");
    running.push(b);
    return { a, b };
  }

  /** Waits until someone other than `old` holds the lease. */
  async function newHolder(id: string, old: string): Promise<void> {
    await tb.waitFor(
      "the standby to take the lease",
      async () => {
        const h = await holder(id);
        return h !== "" && h !== old;
      },
      30_000,
    );
  }

  async function holder(name: string): Promise<string> {
    try {
      const l = await tb.coordination.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name });
      return l.spec?.holderIdentity ?? "";
    } catch {
      return "";
    }
  }

  it("converges after kill -9 in the middle of reconciling, with no duplicate children", async function () {
    const ns = await tb.createNamespace("crash");
    const id = `crash-${process.pid}`;
    const first = await startOperator(tb, {
      name: "crash-1",
      args: [...leaseArgs, `--leader-election-id=${id}`, `--namespaces=${ns}`],
    });
    running.push(first);
    const names = Array.from({ length: 20 }, (_, i) => `crash-${i}`);
    await Promise.all(names.map((n) => createMd(tb, ns, manifest(n, { model, replicas: 1 }))));
    // Kill it as soon as it has applied some children but (very likely) not all.
    await tb.waitFor(
      "the first children",
      async () => (await tb.apps.listNamespacedDeployment({ namespace: ns })).items.length > 0,
      30_000,
    );
    await first.kill9();
    const partial = (await tb.apps.listNamespacedDeployment({ namespace: ns })).items.length;

    const second = await startOperator(tb, {
      name: "crash-2",
      args: [...leaseArgs, `--leader-election-id=${id}`, `--namespaces=${ns}`],
    });
    running.push(second);
    for (const n of names) await waitForCondition(tb, ns, n, "Ready", "True", 90_000);
    const deployments = (await tb.apps.listNamespacedDeployment({ namespace: ns })).items;
    const services = (await tb.core.listNamespacedService({ namespace: ns })).items;
    assert.deepEqual(deployments.map((d) => d.metadata!.name).sort(), [...names].sort());
    assert.deepEqual(services.map((s) => s.metadata!.name).sort(), [...names].sort());
    for (const d of deployments) assert.equal(d.metadata!.ownerReferences?.length, 1);
    const rs = (await tb.apps.listNamespacedReplicaSet({ namespace: ns })).items;
    assert.equal(rs.length, names.length, "a restart rolled pods it should not have");
    process.stderr.write(`      (${partial}/20 Deployments existed when the first operator was killed)\n`);
  });

  it("lets only the leader write, and a standby takes over within the lease duration when the leader dies", async function () {
    const ns = await tb.createNamespace("ha");
    const id = `ha-${process.pid}`;
    const since = new Date();
    const { a, b } = await leaderAndStandby(id, ns, "ha");
    const leaderId = await holder(id);

    await createMd(tb, ns, manifest("before", { model, replicas: 1 }));
    await waitForCondition(tb, ns, "before", "Ready", "True");
    assert.ok((await writesBy(tb, a.user, since)).length > 0, "the leader made no writes");
    assert.deepEqual(await writesBy(tb, b.user, since), [], "the standby wrote");

    const killedAt = Date.now();
    await a.kill9();
    await newHolder(id, leaderId);
    const takeoverS = (Date.now() - killedAt) / 1000;
    process.stderr.write(
      `      (standby took over ${takeoverS.toFixed(1)} s after the leader was killed; lease duration ${lease.durationS} s)\n`,
    );
    // The standby counts the lease duration from when it last saw the lease change (up to one retry
    // period after the leader's last renewal), then acquires at its next poll; allow one more retry
    // period for API latency on a loaded 2-core machine.
    assert.ok(takeoverS <= lease.durationS + 4 * lease.retryS, `takeover took ${takeoverS} s`);

    const afterKill = new Date();
    await createMd(tb, ns, manifest("after", { model, replicas: 1 }));
    await waitForCondition(tb, ns, "after", "Ready", "True");
    assert.ok(
      (await writesBy(tb, b.user, afterKill)).some((w) => w.objectRef?.name === "after"),
      "the new leader did not reconcile",
    );
  });

  it("releases the lease on SIGTERM so a standby takes over at once", async function () {
    const ns = await tb.createNamespace("release");
    const id = `release-${process.pid}`;
    const { a } = await leaderAndStandby(id, ns, "rel");
    await sleep(500);
    const leaderId = await holder(id);
    assert.equal(await a.stop(), 0);
    // Released before the process exited: the lease names nobody (or already the standby), never
    // the stopped leader. A time bound would say the same less reliably on a loaded machine.
    const afterExit = await holder(id);
    assert.notEqual(afterExit, leaderId, "the stopped leader still holds the lease: it was not released");
    await newHolder(id, leaderId);
  });
});
