import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { Autoscaling, ModelDeploymentSpec } from "../../../operator/src/api/index.ts";
import { localNodeGpus } from "../../testbed/nodes.ts";
import { condition, createMd, manifest, readMd, waitForCondition } from "../operator/helpers.ts";
import { Timeline, autoscaledSpec, autoscalerBed, halfLoad, onLocalNode, seconds } from "./fixtures.ts";

describe("autoscaler: every metric type, and replicas that wait for GPUs", function () {
  const bed = autoscalerBed("as-metrics");

  /** Creates the object, waits until it serves, and sends `rps` to it from then on. */
  async function loaded(
    name: string,
    spec: Partial<ModelDeploymentSpec> & Pick<ModelDeploymentSpec, "model">,
    rps: number,
  ) {
    await createMd(bed.tb, bed.ns, manifest(name, spec));
    await waitForCondition(bed.tb, bed.ns, name, "Ready", "True", 120_000);
    const gen = halfLoad(bed.tb, bed.ns, name, () => rps);
    bed.running.push(gen);
    const tl = new Timeline(bed.tb, bed.ns, name);
    bed.running.push(tl);
    await gen.start();
    return tl;
  }

  /** Waits for a scale-up to at least `replicas` and returns the autoscaler's reason at that moment. */
  async function scaledUp(tl: Timeline, replicas: number): Promise<string> {
    const s = await tl.waitFor(`${tl.name} at ${replicas}+ replicas`, (x) => (x.desired ?? 1) >= replicas, 90_000, 0);
    console.log(`      ${tl.name}: ${s.desired} replicas after ${seconds(s.t)} s: ${s.md.status!.autoscaling!.reason}`);
    return s.md.status!.autoscaling!.reason ?? "";
  }

  it("scales up on each metric type: RequestsPerSecond, Concurrency, LatencyP95 and a user's PromQL", async function () {
    this.timeout(300_000);
    const { tb, ns, uri } = bed;
    const selector = 'maas_namespace="$namespace",maas_deployment="$deployment"';
    const types: {
      name: string;
      autoscaling: Partial<Autoscaling> & Pick<Autoscaling, "metric">;
      serving?: ModelDeploymentSpec["serving"];
      rps: number;
      words: RegExp;
    }[] = [
      {
        name: "rps",
        autoscaling: { metric: { type: "RequestsPerSecond", target: 5 }, maxReplicas: 3 },
        rps: 15,
        words: /req\/s per replica/,
      },
      {
        // Requests wait up to 200 ms for a batch to fill: about 20 in flight at 100 req/s, against 8 per replica.
        name: "concurrency",
        autoscaling: { metric: { type: "Concurrency", target: 8 }, maxReplicas: 3 },
        serving: { batching: { maxBatchSize: 64, maxDelayMs: 200 } },
        rps: 100,
        words: /in-flight requests per replica/,
      },
      {
        // The same batching delay puts the 95th percentile near 200 ms, against a target of 80 ms.
        name: "latency",
        autoscaling: { metric: { type: "LatencyP95", target: 0.08 }, maxReplicas: 3 },
        serving: { batching: { maxBatchSize: 64, maxDelayMs: 200 } },
        rps: 10,
        words: /s p95 latency per replica/,
      },
      {
        name: "promql",
        autoscaling: {
          metric: {
            type: "PromQL",
            target: 5,
            query: `sum(rate(maas_requests_total{${selector}}[$window])) / count(maas_model_ready{${selector}} == 1)`,
          },
          maxReplicas: 3,
        },
        rps: 15,
        words: /\d per replica over \d+s.*target 5\b/,
      },
    ];
    const timelines = await Promise.all(
      types.map((t) => loaded(t.name, autoscaledSpec(uri, t.autoscaling, t.serving), t.rps)),
    );
    const reasons = await Promise.all(timelines.map((tl) => scaledUp(tl, 2)));
    for (const [i, t] of types.entries()) {
      assert.match(reasons[i]!, t.words, t.name);
      const md = await readMd(tb, ns, t.name);
      assert.equal(md.status!.autoscaling!.metricType, t.autoscaling.metric.type);
      assert.equal(condition(md, "ScalingActive")!.status, "True", t.name);
    }
  });

  it("waits for GPUs without oscillating, and says so with the scheduler's words", async function () {
    this.timeout(300_000);
    const { tb, ns, uri } = bed;
    const name = "gpu";
    // Two GPUs on the local node; 30 req/s against 5 per replica wants 6 replicas, capped at 4.
    const spec = autoscaledSpec(uri, { metric: { type: "RequestsPerSecond", target: 5 }, maxReplicas: 4 });
    spec.resources = { ...spec.resources, gpu: { count: 1, product: localNodeGpus.product } };
    spec.scheduling = onLocalNode;
    const tl = await loaded(name, spec, 30);
    const capped = await tl.waitFor("4 desired replicas", (s) => s.desired === 4, 90_000, 0);
    const waiting = await waitForCondition(
      tb,
      ns,
      name,
      "ScalingLimited",
      "True",
      90_000,
      // Settled: both GPUs taken, and the scheduler has tried (and refused) both other replicas.
      (md) =>
        condition(md, "ScalingLimited")!.reason === "WaitingForCapacity" &&
        condition(md, "ScalingLimited")!.message.startsWith("2 of 4 desired replicas not ready: 2/4 pods"),
    );
    const limited = condition(waiting, "ScalingLimited")!;
    console.log(`      ${limited.reason}: ${limited.message}`);
    assert.match(
      limited.message,
      /^2 of 4 desired replicas not ready: 2\/4 pods cannot be scheduled: 0\/\d+ nodes are available: .*Insufficient nvidia\.com\/gpu/,
    );
    assert.equal(condition(waiting, "Scheduled")!.reason, "InsufficientGPU");
    assert.equal(condition(waiting, "Ready")!.status, "True", "serving at more than minReplicas is Ready");
    const from = tl.now();
    await sleep(30_000);
    const seen = [...new Set(tl.between(from).map((s) => `${s.desired ?? "?"}/${s.replicas ?? "?"}/${s.ready}`))];
    console.log(`      desired/replicas/ready over 30 s after the cap at ${seconds(capped.t)} s: ${seen.join(", ")}`);
    assert.deepEqual(seen, ["4/4/2"], "the pending replicas ask for nothing more, and nothing flaps");
  });
});
