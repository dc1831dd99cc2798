import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import type { ModelStore } from "../../testbed/model-store.ts";
import { OPERATOR_NAMESPACE, installCrd, startOperator, type OperatorProcess } from "../../testbed/operator.ts";
import { condition, createMd, manifest, waitForCondition } from "../operator/helpers.ts";
import {
  Timeline,
  autoscaledSpec,
  autoscalerArgs,
  halfLoad,
  halfPlusThreeStore,
  lowerSince,
  seconds,
} from "./fixtures.ts";

const leaseArgs = ["--lease-duration-seconds=6", "--renew-deadline-seconds=4", "--retry-period-seconds=1"];

describe("autoscaler: Prometheus outages, operator restarts and leader changes", function () {
  let tb: Testbed;
  let store: ModelStore;
  let uri: string;
  const running: { stop(): unknown }[] = [];
  const operators: OperatorProcess[] = [];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full", { prometheus: true });
    await installCrd(tb);
    ({ store, uri } = await halfPlusThreeStore());
  });

  const namespaces: string[] = [];

  afterEach(async function () {
    for (const r of running.splice(0)) await r.stop();
    for (const op of operators.splice(0)) await op.kill9();
    for (const name of namespaces.splice(0)) await tb.core.deleteNamespace({ name });
    // A test that stopped Prometheus and failed before starting it again must not take it from the next.
    await useTestbed("full", { prometheus: true });
  });

  after(async function () {
    await store.close();
  });

  async function operator(ns: string, id: string, tag: string, user?: string): Promise<OperatorProcess> {
    const op = await startOperator(tb, {
      name: tag,
      ...(user ? { user } : {}),
      args: [`--namespaces=${ns}`, `--leader-election-id=${id}`, ...leaseArgs, ...autoscalerArgs(tb)],
    });
    operators.push(op);
    return op;
  }

  async function holder(id: string): Promise<string> {
    try {
      return (
        (await tb.coordination.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: id })).spec?.holderIdentity ??
        ""
      );
    } catch {
      return "";
    }
  }

  /** An object at 3 replicas under a steady 13 req/s (target 5 per replica: ceil(2.6)). */
  async function atThreeReplicas(ns: string, name: string, delaySeconds: number) {
    const a = { metric: { type: "RequestsPerSecond" as const, target: 5 }, scaleDownDelaySeconds: delaySeconds };
    await createMd(tb, ns, manifest(name, autoscaledSpec(uri, a)));
    await waitForCondition(tb, ns, name, "Ready", "True", 120_000);
    let rps = 13;
    const gen = halfLoad(tb, ns, name, () => rps);
    running.push(gen);
    await gen.start();
    const tl = new Timeline(tb, ns, name);
    running.push(tl);
    await tl.waitFor("3 ready replicas", (s) => s.desired === 3 && s.ready === 3 && s.mode === "Stable", 120_000);
    return {
      tl,
      gen,
      setRate: (r: number) => {
        rps = r;
      },
    };
  }

  it("holds the replicas while Prometheus is down, says why and since when, and resumes when it is back", async function () {
    this.timeout(300_000);
    const ns = await tb.createNamespace("as-prom");
    namespaces.push(ns);
    await operator(ns, `as-prom-${process.pid}`, "as-prom");
    const { tl, setRate } = await atThreeReplicas(ns, "outage", 15);
    const down = tl.now();
    await tb.stopPrometheus();
    // With Prometheus gone nothing can be read, and the load stops too: nothing may fall to minReplicas.
    setRate(0);
    const holding = await waitForCondition(tb, ns, "outage", "ScalingActive", "False", 30_000);
    const c = condition(holding, "ScalingActive")!;
    console.log(`      Prometheus stopped → ScalingActive=False in ${seconds(tl.now() - down)} s: ${c.message}`);
    assert.equal(c.reason, "PrometheusUnreachable");
    assert.match(
      c.message,
      /^Holding 3 replicas since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: Prometheus at http:\/\/127\.0\.0\.1:\d+ is unreachable/,
    );
    assert.equal(holding.status!.autoscaling!.mode, "Holding");
    await sleep(25_000); // longer than the scale-down delay
    assert.deepEqual(
      [...new Set(tl.between(down).map((s) => `${s.desired ?? "?"}/${s.replicas ?? "?"}`))],
      ["3/3"],
      "replicas held while the metric was unreadable",
    );
    await tb.startPrometheus();
    const back = tl.now();
    const resumed = await waitForCondition(tb, ns, "outage", "ScalingActive", "True", 60_000);
    console.log(`      Prometheus back → ScalingActive=True in ${seconds(tl.now() - back)} s`);
    assert.equal(resumed.status!.autoscaling!.holdingSince, undefined);
    // It acts again: the load stopped during the outage, so it scales down after the delay.
    await tl.waitFor("the scale-down after the outage", (s) => (s.desired ?? 3) < 3, 90_000, back);
  });

  /**
   * Stops the load, waits for the first lower recommendation, interrupts the leader (`interrupt`)
   * while the 30 s scale-down delay runs, and checks when the scale-down happened: not before the
   * delay (forgotten), and not a delay after the new leader started (reset).
   */
  async function scaleDownAcrossLeaders(ns: string, name: string, interrupt: () => Promise<void>) {
    const delay = 30;
    const { tl, setRate } = await atThreeReplicas(ns, name, delay);
    setRate(0);
    const lower = await tl.waitFor("a lower recommendation", (s) => lowerSince(s.md, 3) !== undefined, 60_000);
    const lowSince = lowerSince(lower.md, 3)!;
    await sleep(8_000);
    const interrupted = Date.now();
    await interrupt();
    const resumedAt = Date.now();
    const down = await tl.waitFor("the scale-down", (s) => (s.desired ?? 3) < 3, 120_000);
    const scaledAt = Date.parse(down.md.status!.autoscaling!.lastScaleTime!);
    console.log(
      `      lower recommendation at 0 s, leader interrupted at ${seconds(interrupted - lowSince)} s, new leader by ${seconds(resumedAt - lowSince)} s, scaled down at ${seconds(scaledAt - lowSince)} s (delay ${delay} s)`,
    );
    // Status times are whole seconds: one second of rounding either way.
    assert.ok(scaledAt - lowSince >= delay * 1000 - 1_000, "the delay was forgotten: scaled down too soon");
    assert.ok(
      scaledAt < resumedAt + delay * 1000 - 1_000,
      "the delay was reset: it started again when the new leader took over",
    );
  }

  it("neither resets nor forgets a scale-down delay when the operator is killed and restarted", async function () {
    this.timeout(300_000);
    const ns = await tb.createNamespace("as-restart");
    namespaces.push(ns);
    const id = `as-restart-${process.pid}`;
    const first = await operator(ns, id, "as-restart-1");
    await scaleDownAcrossLeaders(ns, "restart", async () => {
      await first.kill9();
      await operator(ns, id, "as-restart-2");
      await tb.waitFor("a new leader", async () => (await holder(id)) !== "", 30_000);
    });
  });

  it("neither resets nor forgets a scale-down delay when the leader hands over to a standby", async function () {
    this.timeout(300_000);
    const ns = await tb.createNamespace("as-leader");
    namespaces.push(ns);
    const id = `as-leader-${process.pid}`;
    const a = await operator(ns, id, "as-leader-a", "maas-operator-a");
    await tb.waitFor("a leader", async () => (await holder(id)) !== "", 30_000);
    await operator(ns, id, "as-leader-b", "maas-operator-b");
    const before = await holder(id);
    await scaleDownAcrossLeaders(ns, "leader", async () => {
      assert.equal(await a.stop(), 0, "the leader exits cleanly on SIGTERM");
      await tb.waitFor(
        "the standby to lead",
        async () => {
          const h = await holder(id);
          return h !== "" && h !== before;
        },
        30_000,
      );
    });
  });
});
