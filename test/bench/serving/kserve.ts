/**
 * The Python KServe contender of `npm run bench:serving`: KServe's ModelServer (kserve/server.py) serving
 * the bench's TF.js graph model, converted once to a SavedModel. Its Python environment is made on
 * demand, never by `npm test` or CI: a virtualenv under ~/.cache/maas-bench/kserve-<key>/, where the key
 * hashes the Python version and the pinned requirement files, so a second run installs nothing.
 *
 * `node test/bench/serving/kserve.ts` makes the environment alone (the bench makes it when needed);
 * BENCH_PYTHON=<interpreter> chooses the Python to make it with (python3.11 by default).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import path from "node:path";
import { exists, key } from "../../testbed/paths.ts";

const here = path.join(import.meta.dirname, "kserve");
const python = process.env["BENCH_PYTHON"] ?? "python3.11";

/** Thrown when the contender cannot run on this machine; the bench records the reason and goes on. */
export class ContenderUnavailable extends Error {}

/**
 * Runs a command (in `cwd`, if given) and resolves with its output (stdout and stderr) if it exits 0;
 * with `progress`, its output goes to stderr instead (the bench's progress stream) and it resolves with "".
 */
export async function run(
  what: string,
  command: string,
  args: string[],
  progress = false,
  cwd?: string,
): Promise<string> {
  const child = spawn(command, args, { cwd, stdio: ["ignore", progress ? 2 : "pipe", progress ? 2 : "pipe"] });
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (c: Buffer) => chunks.push(c));
  child.stderr?.on("data", (c: Buffer) => chunks.push(c));
  const [code] = (await Promise.race([once(child, "exit"), once(child, "error")])) as [number | Error | null];
  if (code instanceof Error)
    throw new ContenderUnavailable(`${what}: ${command} could not be started (${code.message})`);
  if (code !== 0) throw new ContenderUnavailable(`${what}: ${path.basename(command)} exited with ${code}`);
  return Buffer.concat(chunks).toString("utf8").trim();
}

/**
 * The virtualenv's directory, made and installed if it is not there yet. Pip's progress goes to stderr.
 * A venv is complete only once its marker file is written, so an interrupted install starts over.
 */
export async function ensureVenv(): Promise<string> {
  const version = await run(`no ${python} to make KServe's virtualenv with`, python, ["--version"]);
  const files = ["requirements.txt", "requirements-no-deps.txt"] as const;
  const contents = await Promise.all(files.map((f) => readFile(path.join(here, f))));
  const venv = path.join(homedir(), ".cache/maas-bench", `kserve-${key([version, ...contents])}`, "venv");
  const marker = path.join(venv, ".maas-bench-complete");
  if (await exists(marker)) return venv;
  console.error(`KServe: making ${venv} (${version}; kserve, tensorflow-cpu and their dependencies)…`);
  const t0 = performance.now();
  await rm(venv, { recursive: true, force: true });
  await run("could not make KServe's virtualenv", python, ["-m", "venv", venv], true);
  const install = ["-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"];
  const pip = (file: string, ...flags: string[]): Promise<string> =>
    run(
      `could not install ${file} into KServe's virtualenv (is PyPI reachable? pip's output is above)`,
      path.join(venv, "bin/python"),
      [...install, ...flags, "-r", path.join(here, file)],
      true,
    );
  await pip(files[0]);
  await pip(files[1], "--no-deps");
  const seconds = (performance.now() - t0) / 1000;
  const mib = Number((await run("du", "du", ["-sb", venv])).split("\t")[0]) / 2 ** 20;
  await writeFile(marker, JSON.stringify({ python: version, seconds, mib }) + "\n");
  console.error(`KServe: virtualenv ready in ${seconds.toFixed(0)} s, ${mib.toFixed(0)} MiB.`);
  return venv;
}

/**
 * The SavedModel converted from the TF.js graph model in `modelDir` (model.json and its weight files),
 * cached beside the venv under a key of those files and the converter script.
 */
export async function ensureSavedModel(venv: string, modelDir: string): Promise<string> {
  const converter = path.join(here, "convert.py");
  const names = (await readdir(modelDir)).filter((f) => f === "model.json" || f.endsWith(".bin")).sort();
  const contents = await Promise.all([converter, ...names.map((f) => path.join(modelDir, f))].map((f) => readFile(f)));
  const saved = path.join(path.dirname(venv), "models", key([...names, ...contents]));
  if (await exists(saved)) return saved;
  console.error(`KServe: converting the TF.js graph model to a SavedModel in ${saved}…`);
  // Written aside and renamed, so a directory under its final name is always a whole SavedModel.
  const partial = `${saved}.partial-${process.pid}`;
  await mkdir(path.dirname(saved), { recursive: true });
  const what = "could not convert the model to a SavedModel (the converter's output is above)";
  try {
    await run(what, path.join(venv, "bin/python"), [converter, path.join(modelDir, "model.json"), partial], true);
    await rename(partial, saved);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return saved;
}

/** The bench's startChild: spawns `command args`, resolves once `portOf` finds the port in a stdout line. */
type StartChild = (
  args: string[],
  env: Record<string, string>,
  portOf: (line: Record<string, unknown>) => number | undefined,
  command: string,
) => Promise<{ child: ChildProcess; port: number }>;

/** "0.21" from `name==0.21.0` in requirements.txt, so the contender's name follows the pins. */
export function pinnedMinor(name: string): string {
  const requirements = readFileSync(path.join(here, "requirements.txt"), "utf8");
  return new RegExp(`^${name}==(\\d+\\.\\d+)`, "m").exec(requirements)?.[1] ?? "?";
}

/**
 * The KServe contender: as many worker processes as maas has worker threads (one per core), each with
 * one TF intra-op and one inter-op thread; gRPC and per-request logs off; bound to 127.0.0.1. `start`
 * makes the environment and the SavedModel on first use and resolves once every worker has loaded the
 * model; it throws ContenderUnavailable when that cannot be done here.
 */
export function kserveContender(
  modelDir: string,
  startChild: StartChild,
): { name: string; start: () => Promise<{ child: ChildProcess; port: number }> } {
  const workers = availableParallelism();
  let prepared: Promise<{ venv: string; saved: string }> | undefined;
  const prepare = async (): Promise<{ venv: string; saved: string }> => {
    if (workers < 2) throw new ContenderUnavailable("KServe's multi-process server needs two cores or more");
    const venv = await ensureVenv();
    return { venv, saved: await ensureSavedModel(venv, modelDir) };
  };
  return {
    name: `kserve ${pinnedMinor("kserve")} (Python, TF ${pinnedMinor("tensorflow-cpu")} CPU, ${workers} workers)`,
    start: async () => {
      const { venv, saved } = await (prepared ??= prepare());
      let port: number | undefined;
      const ready = new Set<unknown>();
      const args = [
        ...[path.join(here, "server.py"), "--model_dir", saved, "--model_name", "model"],
        ...["--workers", String(workers), "--http_port", "0", "--enable_grpc", "false"],
        ...["--enable_latency_logging", "false"],
      ];
      // server.py prints its port, then each worker says when its model is loaded.
      return startChild(
        args,
        {},
        (line) => {
          if (typeof line["port"] === "number") port = line["port"];
          if (line["ready"] === true) ready.add(line["pid"]);
          return ready.size >= workers ? port : undefined;
        },
        path.join(venv, "bin/python"),
      ).catch((e: unknown) => {
        throw new ContenderUnavailable(`KServe's server stopped before it was ready (${String(e)}; see above)`);
      });
    },
  };
}

if (import.meta.main) {
  const venv = await ensureVenv();
  console.log(venv);
}
