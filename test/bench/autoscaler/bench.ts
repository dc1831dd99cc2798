/**
 * `npm run bench:autoscaler`: maas's autoscaler and KEDA side by side, on the real test bed, under
 * the same load. Each contender scales its own copy of the same serving Deployment (half_plus_three,
 * real processes on the local node, scraped every second by Prometheus): maas a ModelDeployment,
 * KEDA a plain Deployment through a ScaledObject with its Prometheus scaler and the real HPA
 * controller, with the same query and target. Both get a 10× step in request rate and back at the
 * same moments, from two load generators following one curve. Every half second it records each
 * one's decision, replicas and Ready replicas; it reports, per contender, the time from the step to
 * the first scale decision and to the needed replicas Ready, overshoot, the time to scale back
 * down, the replica-seconds spent and the requests answered 429/5xx during the step.
 *
 * Two rows (BENCH_ROWS, default both): `defaults` — each as a user installs it (maas: stable 60 s,
 * panic 6 s, scale-down delay 300 s; KEDA: polling 30 s, the HPA's 15 s sync and 300 s scale-down
 * stabilisation, the query over 60 s); `tuned` — each at its fastest documented settings (maas:
 * stable 10 s, panic 4 s, no delay, no scale-down rate limit; KEDA: polling 1 s, HPA scale-down
 * stabilisation 0 and no rate limits, the query over 10 s; the HPA's 15 s sync is a
 * controller-manager flag a user of a managed cluster cannot change, so it stays).
 *
 * Writes bench/results/autoscaler.json and bench/results/autoscaler.svg and prints a markdown table.
 * A benchmark, not a test. BENCH_CHART_ONLY=1 redraws the chart and table from the last JSON. Environment: BENCH_ROWS (defaults,tuned), BENCH_LOW_RPS (4), BENCH_STEP
 * (10), BENCH_TARGET (6 req/s per replica), BENCH_HIGH_SECONDS (120).
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Autoscaling } from "../../../operator/src/api/index.ts";
import {
  autoscaledSpec,
  autoscalerArgs,
  halfLoad,
  halfPlusThreeStore,
  plainServingDeployment,
  prometheusScaledObject,
} from "../../integration/autoscaler/fixtures.ts";
import { createMd, manifest, readMd, waitForCondition } from "../../integration/operator/helpers.ts";
import { stopTestbed, useTestbed, type Testbed } from "../../testbed/index.ts";
import type { LoadGenerator, LoadStats } from "../../testbed/load.ts";
import { installCrd, startOperator } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { lineChart, type Panel } from "./chart.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? String(fallback));
// 4 and 40 req/s against 6 per replica need 0.67 and 6.67 replicas. A load that sits exactly on a
// whole number of replicas (40 against 5) rounds up to one more on the slightest measurement noise,
// which would show as overshoot that is neither autoscaler's doing.
const lowRps = env("BENCH_LOW_RPS", 4);
const factor = env("BENCH_STEP", 10);
const target = env("BENCH_TARGET", 6);
const lowSeconds = 40;
const highSeconds = env("BENCH_HIGH_SECONDS", 120);
const rows = (process.env["BENCH_ROWS"] ?? "defaults,tuned").split(",").map((r) => r.trim()) as RowName[];
const scrapeSeconds = 1;
const needed = Math.ceil((lowRps * factor) / target);
const maxReplicas = needed + 3;

type RowName = "defaults" | "tuned";

interface RowSettings {
  /** How long to watch after the load drops: long enough for both to reach minReplicas. */
  afterSeconds: number;
  maas: Partial<Autoscaling>;
  keda: { pollingInterval: number; windowSeconds: number; scaleDownStabilizationSeconds?: number };
}

const rowSettings: Record<RowName, RowSettings> = {
  defaults: {
    afterSeconds: 450,
    maas: {},
    keda: { pollingInterval: 30, windowSeconds: 60 },
  },
  tuned: {
    afterSeconds: 150,
    maas: { stableWindowSeconds: 10, panicWindowSeconds: 4, scaleDownDelaySeconds: 0, maxScaleDownRate: 1000 },
    keda: { pollingInterval: 1, windowSeconds: 10, scaleDownStabilizationSeconds: 0 },
  },
};

const log = (msg: string): void => {
  process.stderr.write(`[bench:autoscaler] ${msg}\n`);
};

interface Sample {
  t: number;
  offered: number;
  desired: number;
  replicas: number;
  ready: number;
}

/** One autoscaler under test: what it scales, and how to read its decision. */
interface Contender {
  name: string;
  deployment: string;
  /** The replicas the autoscaler asks for now. */
  desired(): Promise<number>;
  settings: Record<string, unknown>;
}

async function maasContender(tb: Testbed, ns: string, uri: string, row: RowSettings): Promise<Contender> {
  const name = "maas";
  const autoscaling = {
    metric: { type: "RequestsPerSecond" as const, target },
    minReplicas: 1,
    maxReplicas,
    // The API's defaults, unless the row says otherwise.
    stableWindowSeconds: 60,
    panicWindowSeconds: 6,
    scaleDownDelaySeconds: 300,
    ...row.maas,
  };
  await createMd(tb, ns, manifest(name, autoscaledSpec(uri, autoscaling)));
  await waitForCondition(tb, ns, name, "Ready", "True", 180_000);
  return {
    name: "maas",
    deployment: name,
    desired: async () => (await readMd(tb, ns, name)).status?.autoscaling?.desiredReplicas ?? 1,
    settings: { ...autoscaling, autoscalerIntervalSeconds: 2, scrapeIntervalSeconds: scrapeSeconds },
  };
}

async function kedaContender(tb: Testbed, ns: string, uri: string, row: RowSettings): Promise<Contender> {
  const name = "keda";
  const deployment = plainServingDeployment(ns, name, autoscaledSpec(uri, { metric: { target } }));
  await tb.apps.createNamespacedDeployment({ namespace: ns, body: deployment });
  const stabilization = row.keda.scaleDownStabilizationSeconds;
  const scaledObject = prometheusScaledObject(tb, ns, name, {
    windowSeconds: row.keda.windowSeconds,
    target,
    maxReplicas,
    pollingInterval: row.keda.pollingInterval,
    ...(stabilization === undefined
      ? {}
      : {
          behavior: {
            scaleDown: {
              stabilizationWindowSeconds: stabilization,
              policies: [{ type: "Percent", value: 100, periodSeconds: 1 }],
            },
            scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: "Percent", value: 1000, periodSeconds: 1 }] },
          },
        }),
  });
  const applied = await tb.kubectl(["apply", "-f", "-"], { input: JSON.stringify(scaledObject) });
  if (applied.code !== 0) throw new Error(`creating the ScaledObject failed: ${applied.stderr}`);
  await tb.waitFor(
    "KEDA's Deployment available",
    async () => (await tb.apps.readNamespacedDeployment({ namespace: ns, name })).status?.availableReplicas === 1,
    180_000,
  );
  return {
    name: "KEDA + HPA",
    deployment: name,
    desired: async () => {
      const r = await tb.kubectl([
        "-n",
        ns,
        "get",
        "hpa",
        `keda-hpa-${name}`,
        "-o",
        "jsonpath={.status.desiredReplicas}",
      ]);
      return Number(r.stdout) || 1;
    },
    settings: {
      ...(scaledObject["spec"] as Record<string, unknown>),
      hpaSyncPeriodSeconds: 15,
      hpaScaleDownStabilizationSeconds: stabilization ?? 300,
    },
  };
}

function firstAfter(samples: Sample[], from: number, pred: (s: Sample) => boolean): Sample | undefined {
  return samples.find((s) => s.t >= from && pred(s));
}

const round = (n: number | undefined) => (n === undefined ? null : Math.round(n * 10) / 10);

function resultsOf(samples: Sample[], stepAt: number, dropAt: number, before: LoadStats, during: LoadStats) {
  const initial = samples.find((s) => s.t >= stepAt - 1)?.desired ?? 1;
  const decision = firstAfter(samples, stepAt, (s) => s.desired > initial);
  const readyAll = firstAfter(samples, stepAt, (s) => s.ready >= needed);
  const peak = Math.max(...samples.filter((s) => s.t >= stepAt && s.t < dropAt).map((s) => s.desired));
  const firstDown = firstAfter(samples, dropAt, (s) => s.desired < peak);
  const atMin = firstAfter(samples, dropAt, (s) => s.desired === 1 && s.replicas === 1);
  const integral = (f: (s: Sample) => number) =>
    samples.reduce((sum, s, i) => sum + (i > 0 ? f(samples[i - 1]!) * (s.t - samples[i - 1]!.t) : 0), 0);
  const count = (stats: LoadStats, codes: (code: string) => boolean) =>
    Object.entries(stats.codes)
      .filter(([code]) => codes(code))
      .reduce((n, [, c]) => n + c, 0);
  const refused = (code: string) => code === "429" || code.startsWith("5");
  return {
    stepToFirstDecisionSeconds: round(decision && decision.t - stepAt),
    stepToFirstDecisionScrapeIntervals: round(decision && (decision.t - stepAt) / scrapeSeconds),
    firstDecisionReplicas: decision?.desired ?? null,
    stepToNeededReplicasReadySeconds: round(readyAll && readyAll.t - stepAt),
    peakDesiredReplicas: peak,
    overshootReplicas: peak - needed,
    dropToFirstScaleDownSeconds: round(firstDown && firstDown.t - dropAt),
    dropToMinReplicasSeconds: round(atMin && atMin.t - dropAt),
    replicaSeconds: round(integral((s) => s.replicas)),
    readyReplicaSeconds: round(integral((s) => s.ready)),
    idealReplicaSeconds: round(integral((s) => Math.ceil(s.offered / target))),
    requestsDuringStep: count(during, () => true) - count(before, () => true),
    refused429Or5xxDuringStep: count(during, refused) - count(before, refused),
    failedDuringStep: during.failed - before.failed,
  };
}

/** Runs one row: both contenders created, the same load curve on both, samples every half second. */
async function runRow(tb: Testbed, rowName: RowName, uri: string, operatorArgs: string[]) {
  const row = rowSettings[rowName];
  const ns = await tb.createNamespace(`bench-as-${rowName}`);
  const op = await startOperator(tb, { name: `bench-as-${rowName}`, args: [`--namespaces=${ns}`, ...operatorArgs] });
  try {
    const contenders = [await maasContender(tb, ns, uri, row), await kedaContender(tb, ns, uri, row)];
    let offered = lowRps;
    const gens: LoadGenerator[] = contenders.map((c) => halfLoad(tb, ns, c.deployment, () => offered));
    for (const g of gens) await g.start();
    // Let the low load fill the windows before the clock starts.
    await sleep(60_000);
    log(`${rowName}: low load ${lowRps} req/s on each; stepping to ${lowRps * factor} req/s after ${lowSeconds} s`);
    const samples = contenders.map((): Sample[] => []);
    const t0 = Date.now();
    const now = () => (Date.now() - t0) / 1000;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const t = now();
        await Promise.all(
          contenders.map(async (c, i) => {
            const [desired, d] = await Promise.all([
              c.desired(),
              tb.apps.readNamespacedDeployment({ namespace: ns, name: c.deployment }),
            ]);
            samples[i]!.push({
              t,
              offered,
              desired,
              replicas: d.spec?.replicas ?? 0,
              ready: d.status?.readyReplicas ?? 0,
            });
          }),
        );
        await sleep(500);
      }
    })();
    await sleep(lowSeconds * 1000);
    const stepAt = now();
    const before = gens.map((g) => g.stats);
    offered = lowRps * factor;
    await sleep(highSeconds * 1000);
    const dropAt = now();
    const during = gens.map((g) => g.stats);
    offered = lowRps;
    log(`${rowName}: back to ${lowRps} req/s; watching the scale-down for ${row.afterSeconds} s`);
    await sleep(row.afterSeconds * 1000);
    sampling = false;
    await sampler;
    const end = now();
    const stats = await Promise.all(gens.map((g) => g.stop()));
    return {
      row: rowName,
      stepAt,
      dropAt,
      end,
      contenders: contenders.map((c, i) => ({
        name: c.name,
        settings: c.settings,
        results: { ...resultsOf(samples[i]!, stepAt, dropAt, before[i]!, during[i]!), load: stats[i] },
        samples: samples[i]!,
      })),
    };
  } finally {
    await op.stop();
    await tb.core.deleteNamespace({ name: ns });
  }
}

type RowResult = Awaited<ReturnType<typeof runRow>>;

const colors = { maas: "#2ca02c", keda: "#9467bd" };

function panelOf(r: RowResult): Panel {
  const [maas, keda] = r.contenders;
  const series = (c: (typeof r.contenders)[number], color: string) => [
    { label: `${c.name} Ready`, color, points: c.samples.map((s) => [s.t, s.ready] as const) },
    { label: `${c.name} desired`, color, dashed: true, points: c.samples.map((s) => [s.t, s.desired] as const) },
  ];
  return {
    title: r.row === "defaults" ? "As installed (defaults)" : "Tuned to their fastest documented settings",
    yLabel: "replicas",
    markers: [
      { at: r.stepAt, label: `${factor}× step` },
      { at: r.dropAt, label: "back to low" },
    ],
    series: [
      {
        label: "needed",
        color: "#9e9e9e",
        points: maas!.samples.map((s) => [s.t, Math.ceil(s.offered / target)] as const),
      },
      ...series(maas!, colors.maas),
      ...series(keda!, colors.keda),
    ],
  };
}

function table(results: RowResult[]): string {
  const head = ["", ...results.flatMap((r) => r.contenders.map((c) => `${c.name} (${r.row})`))];
  const cells = (f: (c: RowResult["contenders"][number]["results"]) => string) => [
    ...results.flatMap((r) => r.contenders.map((c) => f(c.results))),
  ];
  const line = (cols: string[]) => `| ${cols.join(" | ")} |`;
  return [
    line(head),
    line(head.map((_, i) => (i === 0 ? "---" : "---:"))),
    line(["step → first scale decision (s)", ...cells((x) => `${x.stepToFirstDecisionSeconds ?? "–"}`)]),
    line([`step → ${needed} replicas Ready (s)`, ...cells((x) => `${x.stepToNeededReplicasReadySeconds ?? "never"}`)]),
    line([`peak desired (needed ${needed})`, ...cells((x) => `${x.peakDesiredReplicas}`)]),
    line(["load drop → first scale-down (s)", ...cells((x) => `${x.dropToFirstScaleDownSeconds ?? "–"}`)]),
    line(["load drop → 1 replica (s)", ...cells((x) => `${x.dropToMinReplicasSeconds ?? "not within the run"}`)]),
    line(["replica-seconds (ideal)", ...cells((x) => `${x.replicaSeconds} (${x.idealReplicaSeconds})`)]),
    line(["429/5xx during the step", ...cells((x) => `${x.refused429Or5xxDuringStep} of ${x.requestsDuringStep}`)]),
  ].join("\n");
}

const jsonPath = path.join(repoRoot, "bench/results/autoscaler.json");

/** The chart and the table from a report (BENCH_CHART_ONLY=1 redraws them from the last JSON without running). */
async function writeReport(report: { date: string; rows: RowResult[] }): Promise<void> {
  const xMax = Math.max(...report.rows.map((r) => r.end));
  const svg = lineChart(
    `maas vs KEDA + HPA: ${lowRps} → ${lowRps * factor} → ${lowRps} req/s, target ${target} req/s per replica (bench:autoscaler, ${report.date.slice(0, 10)})`,
    report.rows.map(panelOf),
    xMax,
  );
  await writeFile(path.join(repoRoot, "bench/results/autoscaler.svg"), svg);
  process.stdout.write(`\n${table(report.rows)}\n\n`);
}

async function main(): Promise<void> {
  if (process.env["BENCH_CHART_ONLY"] === "1") {
    await writeReport(JSON.parse(await readFile(jsonPath, "utf8")) as { date: string; rows: RowResult[] });
    return;
  }
  const started = Date.now();
  const tb = await useTestbed("full", { prometheus: true });
  try {
    await installCrd(tb);
    log("starting KEDA (built on first use)");
    await tb.startKeda();
    const { store, uri } = await halfPlusThreeStore();
    const results: RowResult[] = [];
    for (const row of rows) results.push(await runRow(tb, row, uri, autoscalerArgs(tb)));
    await store.close();
    const report = {
      benchmark: "autoscaler",
      date: new Date().toISOString(),
      load: {
        lowRps,
        highRps: lowRps * factor,
        targetPerReplica: target,
        neededReplicas: needed,
        lowSeconds,
        highSeconds,
      },
      machine:
        "2 cores; control plane, Prometheus, KEDA, both operators, serving processes and the load generators share them",
      rows: results,
    };
    await mkdir(path.join(repoRoot, "bench/results"), { recursive: true });
    await writeFile(jsonPath, JSON.stringify(report, null, 2) + "\n");
    await writeReport(report);
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
