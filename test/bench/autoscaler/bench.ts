/**
 * `npm run bench:autoscaler`: on the real test bed (serving processes on the local node, scraped every
 * second by Prometheus, the operator with its default autoscaler settings), a ModelDeployment takes
 * a 10× step in request rate and back. Records, every half second, the offered load, the metric the
 * autoscaler read, its decision, and the Deployment's replicas and Ready replicas; reports the
 * reaction time (step → first decision, → replicas Ready) in seconds and scrape intervals, overshoot,
 * the time to scale back down and the replica-seconds spent. Writes bench/results/autoscaler.json,
 * bench/results/autoscaler.svg (the curves) and prints a markdown table. A benchmark, not a test.
 *
 * Environment: BENCH_LOW_RPS (4), BENCH_STEP (10: the factor), BENCH_TARGET (6 req/s per replica),
 * BENCH_HIGH_SECONDS (120), BENCH_AFTER_SECONDS (240), BENCH_SCALE_DOWN_DELAY (60; the API default is
 * 300 s, shortened so the run ends in minutes, and stated in the report).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { autoscaledSpec, autoscalerArgs, halfLoad, halfPlusThreeStore } from "../../integration/autoscaler/fixtures.ts";
import { createMd, manifest, readMd, waitForCondition } from "../../integration/operator/helpers.ts";
import { stopTestbed, useTestbed } from "../../testbed/index.ts";
import { installCrd, startOperator } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { lineChart } from "./chart.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? String(fallback));
// 4 and 40 req/s against 6 per replica need 0.67 and 6.67 replicas. A load that sits exactly on a
// whole number of replicas (40 against 5) rounds up to one more on the slightest measurement noise,
// which would show as overshoot that is not the autoscaler's doing.
const lowRps = env("BENCH_LOW_RPS", 4);
const factor = env("BENCH_STEP", 10);
const target = env("BENCH_TARGET", 6);
const lowSeconds = 40;
const highSeconds = env("BENCH_HIGH_SECONDS", 120);
const afterSeconds = env("BENCH_AFTER_SECONDS", 240);
const scaleDownDelaySeconds = env("BENCH_SCALE_DOWN_DELAY", 60);
const scrapeSeconds = 1;
const name = "bench";

const log = (msg: string): void => {
  process.stderr.write(`[bench:autoscaler] ${msg}\n`);
};

interface Sample {
  t: number;
  offered: number;
  desired: number;
  replicas: number;
  ready: number;
  stableMetric: number | undefined;
  panicMetric: number | undefined;
  mode: string | undefined;
}

/** The autoscaler's own gauges for this object, from the operator's /metrics. */
async function operatorMetric(port: number, namespace: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^maas_operator_autoscaler_metric_value\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || !m[1]!.includes(`namespace="${namespace}"`) || !m[1]!.includes(`name="${name}"`)) continue;
    const window = /window="(\w+)"/.exec(m[1]!)?.[1];
    if (window) out[window] = Number(m[2]);
  }
  return out;
}

function firstAfter(samples: Sample[], from: number, pred: (s: Sample) => boolean): Sample | undefined {
  return samples.find((s) => s.t >= from && pred(s));
}

async function main(): Promise<void> {
  const started = Date.now();
  const tb = await useTestbed("full", { prometheus: true });
  try {
    await installCrd(tb);
    const ns = await tb.createNamespace("bench-autoscaler");
    const { store, uri } = await halfPlusThreeStore();
    const op = await startOperator(tb, {
      name: "bench-autoscaler",
      args: [`--namespaces=${ns}`, ...autoscalerArgs(tb)],
    });
    // The API's defaults (stable 60 s, panic 6 s, threshold 2×, tolerance 10%, ×1000 up, ÷2 down),
    // except the scale-down delay.
    const spec = autoscaledSpec(uri, {
      metric: { type: "RequestsPerSecond", target },
      minReplicas: 1,
      maxReplicas: Math.ceil((lowRps * factor) / target) + 2,
      stableWindowSeconds: 60,
      panicWindowSeconds: 6,
      scaleDownDelaySeconds,
    });
    await createMd(tb, ns, manifest(name, spec));
    await waitForCondition(tb, ns, name, "Ready", "True", 180_000);
    let offered = lowRps;
    const gen = halfLoad(tb, ns, name, () => offered);
    await gen.start();
    // Let the low load fill the stable window before the clock starts.
    await sleep(30_000);
    log(`low load ${lowRps} req/s; stepping to ${lowRps * factor} req/s after ${lowSeconds} s`);
    const samples: Sample[] = [];
    const t0 = Date.now();
    const now = () => (Date.now() - t0) / 1000;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [md, d, m] = await Promise.all([
          readMd(tb, ns, name),
          tb.apps.readNamespacedDeployment({ namespace: ns, name }),
          operatorMetric(op.healthPort, ns).catch((): Record<string, number> => ({})),
        ]);
        samples.push({
          t: now(),
          offered,
          desired: md.status?.autoscaling?.desiredReplicas ?? 1,
          replicas: d.spec?.replicas ?? 0,
          ready: d.status?.readyReplicas ?? 0,
          stableMetric: m["stable"],
          panicMetric: m["panic"],
          mode: md.status?.autoscaling?.mode,
        });
        await sleep(500);
      }
    })();
    await sleep(lowSeconds * 1000);
    const stepAt = now();
    const before = gen.stats;
    offered = lowRps * factor;
    await sleep(highSeconds * 1000);
    const dropAt = now();
    const during = gen.stats;
    offered = lowRps;
    log(`back to ${lowRps} req/s; watching the scale-down for ${afterSeconds} s`);
    await sleep(afterSeconds * 1000);
    sampling = false;
    await sampler;
    const end = now();
    const stats = await gen.stop();
    await op.stop();
    await store.close();

    const needed = Math.ceil((lowRps * factor) / target);
    const initial = samples.find((s) => s.t >= stepAt - 1)?.desired ?? 1;
    const decision = firstAfter(samples, stepAt, (s) => s.desired > initial);
    const readyAll = firstAfter(samples, stepAt, (s) => s.ready >= needed);
    const stepSamples = samples.filter((s) => s.t >= stepAt && s.t < dropAt);
    const peak = Math.max(...stepSamples.map((s) => s.desired));
    const firstDown = firstAfter(samples, dropAt, (s) => s.desired < peak);
    const atMin = firstAfter(samples, dropAt, (s) => s.desired === 1 && s.replicas === 1);
    const integral = (f: (s: Sample) => number) =>
      samples.reduce((sum, s, i) => sum + (i > 0 ? f(samples[i - 1]!) * (s.t - samples[i - 1]!.t) : 0), 0);
    const refusedDuringStep = Object.entries(during.codes)
      .filter(([code]) => code === "429" || code.startsWith("5"))
      .reduce((n, [code, c]) => n + c - (before.codes[code] ?? 0), 0);
    const round = (n: number | undefined) => (n === undefined ? null : Math.round(n * 10) / 10);
    const results = {
      stepToFirstDecisionSeconds: round(decision && decision.t - stepAt),
      stepToFirstDecisionScrapeIntervals: round(decision && (decision.t - stepAt) / scrapeSeconds),
      firstDecisionReplicas: decision?.desired ?? null,
      firstDecisionMode: decision?.mode ?? null,
      stepToNeededReplicasReadySeconds: round(readyAll && readyAll.t - stepAt),
      neededReplicas: needed,
      peakDesiredReplicas: peak,
      overshootReplicas: peak - needed,
      dropToFirstScaleDownSeconds: round(firstDown && firstDown.t - dropAt),
      dropToMinReplicasSeconds: round(atMin && atMin.t - dropAt),
      replicaSeconds: round(integral((s) => s.replicas)),
      readyReplicaSeconds: round(integral((s) => s.ready)),
      idealReplicaSeconds: round(integral((s) => Math.ceil(s.offered / target))),
      requestsDuringStep:
        Object.values(during.codes).reduce((a, b) => a + b, 0) - Object.values(before.codes).reduce((a, b) => a + b, 0),
      refused429Or5xxDuringStep: refusedDuringStep,
      load: stats,
    };
    const settings = {
      metric: "RequestsPerSecond",
      targetPerReplica: target,
      lowRps,
      highRps: lowRps * factor,
      lowSeconds,
      highSeconds,
      afterSeconds,
      stableWindowSeconds: 60,
      panicWindowSeconds: 6,
      panicThreshold: 2,
      scaleDownDelaySeconds,
      autoscalerIntervalSeconds: 2,
      scrapeIntervalSeconds: scrapeSeconds,
      machine: "2 cores; control plane, Prometheus, operator, serving processes and the load generator share them",
    };
    const report = { benchmark: "autoscaler", date: new Date().toISOString(), settings, results, samples };
    await mkdir(path.join(repoRoot, "bench/results"), { recursive: true });
    await writeFile(path.join(repoRoot, "bench/results/autoscaler.json"), JSON.stringify(report, null, 2) + "\n");
    const markers = [
      { at: stepAt, label: `${factor}× step` },
      { at: dropAt, label: "back to low" },
    ];
    const svg = lineChart(
      `maas autoscaler: ${lowRps} → ${lowRps * factor} → ${lowRps} req/s, target ${target} req/s per replica (bench:autoscaler, ${report.date.slice(0, 10)})`,
      [
        {
          title: "Replicas",
          yLabel: "replicas",
          markers,
          series: [
            {
              label: "needed (offered ÷ target)",
              color: "#9e9e9e",
              points: samples.map((s) => [s.t, Math.ceil(s.offered / target)]),
            },
            { label: "Ready", color: "#2ca02c", points: samples.map((s) => [s.t, s.ready]) },
            {
              label: "desired (autoscaler)",
              color: "#1f77b4",
              dashed: true,
              points: samples.map((s) => [s.t, s.desired]),
            },
          ],
        },
        {
          title: "Metric the autoscaler read (per ready replica)",
          yLabel: "req/s per replica",
          markers,
          series: [
            {
              label: "stable window (60 s)",
              color: "#ff7f0e",
              points: samples.filter((s) => s.stableMetric !== undefined).map((s) => [s.t, s.stableMetric!]),
            },
            {
              label: "panic window (6 s)",
              color: "#d62728",
              dashed: true,
              points: samples.filter((s) => s.panicMetric !== undefined).map((s) => [s.t, s.panicMetric!]),
            },
            {
              label: "target",
              color: "#9e9e9e",
              dashed: true,
              points: [
                [0, target],
                [end, target],
              ],
            },
          ],
        },
      ],
      end,
    );
    await writeFile(path.join(repoRoot, "bench/results/autoscaler.svg"), svg);
    const row = (what: string, value: string) => `| ${what} | ${value} |`;
    process.stdout.write(
      [
        "",
        `| bench:autoscaler (${lowRps} → ${lowRps * factor} → ${lowRps} req/s, target ${target}, scale-down delay ${scaleDownDelaySeconds} s) | |`,
        "|---|---:|",
        row(
          "step → first scale decision",
          `${results.stepToFirstDecisionSeconds} s (${results.stepToFirstDecisionScrapeIntervals} scrape intervals), to ${results.firstDecisionReplicas} replicas (${results.firstDecisionMode})`,
        ),
        row(`step → ${needed} replicas Ready`, `${results.stepToNeededReplicasReadySeconds} s`),
        row("peak desired / needed", `${peak} / ${needed}`),
        row("load drop → first scale-down", `${results.dropToFirstScaleDownSeconds} s`),
        row("load drop → minReplicas", `${results.dropToMinReplicasSeconds} s`),
        row(
          "replica-seconds (Ready) / ideal",
          `${results.replicaSeconds} (${results.readyReplicaSeconds}) / ${results.idealReplicaSeconds}`,
        ),
        row("429 or 5xx during the step", `${results.refused429Or5xxDuringStep} of ${results.requestsDuringStep}`),
        "",
      ].join("\n"),
    );
    log(`done in ${Math.round((Date.now() - started) / 1000)} s; wrote bench/results/autoscaler.json and .svg`);
  } finally {
    await stopTestbed();
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench:autoscaler failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  await stopTestbed();
  process.exit(1);
});
