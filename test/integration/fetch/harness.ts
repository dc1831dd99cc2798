/** Shared pieces of the fetch integration tests: the fetch child process, a model on disk, and a scratch dir. */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const cliPath = resolve(import.meta.dirname, "../../../serving-image/src/fetch/cli.ts");

export interface FetchRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly stdout: string;
  /** Contents of the termination-message file, or undefined when none was written. */
  readonly message: string | undefined;
}

/** A test model: model.json text plus shard files, as TF.js lays them out. */
export interface TestModel {
  readonly files: ReadonlyMap<string, Buffer>;
}

/** A graph-model-shaped model.json with `shards` weight files of `shardBytes` random bytes each. */
export function makeModel(shards = 2, shardBytes = 64 * 1024, dir = ""): TestModel {
  const files = new Map<string, Buffer>();
  const paths = Array.from({ length: shards }, (_, i) => `${dir}group1-shard${i + 1}of${shards}.bin`);
  const modelJson = {
    format: "graph-model",
    generatedBy: "fetch tests",
    modelTopology: { node: [] },
    weightsManifest: [{ paths, weights: [{ name: "w", shape: [(shards * shardBytes) / 4], dtype: "float32" }] }],
  };
  files.set("model.json", Buffer.from(JSON.stringify(modelJson)));
  for (const p of paths) files.set(p, randomBytes(shardBytes));
  return { files };
}

/** The expected MAAS_MODEL_SHA256 of a set of files, computed independently of the code under test. */
export function expectedDigest(files: ReadonlyMap<string, Buffer>): string {
  const lines = [...files.keys()]
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((p) => `${createHash("sha256").update(files.get(p)!).digest("hex")}  ${p}\n`)
    .join("");
  return createHash("sha256").update(lines).digest("hex");
}

export async function writeModel(dir: string, model: TestModel): Promise<void> {
  for (const [p, data] of model.files) {
    const abs = join(dir, ...p.split("/"));
    await mkdir(join(abs, ".."), { recursive: true });
    await writeFile(abs, data);
  }
}

/** Every regular file under dir as path → bytes ("/"-separated relative paths). */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const ent of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (ent.isFile()) {
      const abs = join(ent.parentPath, ent.name);
      out.set(
        abs
          .slice(dir.length + 1)
          .split("\\")
          .join("/"),
        await readFile(abs),
      );
    }
  }
  return out;
}

export async function scratch(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "maas-fetch-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Runs `cli.ts` as a real child process on the project's Node with only the given environment (plus PATH
 * and a private HOME, so no AWS config of the machine leaks in) and collects its outcome.
 */
export async function runFetchProcess(
  env: Record<string, string>,
  work: string,
  killAfterMs?: number,
): Promise<FetchRun> {
  const messagePath = join(work, "termination-log");
  await rm(messagePath, { force: true });
  const child = spawn(process.execPath, [cliPath], {
    env: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: work,
      AWS_EC2_METADATA_DISABLED: "true",
      MAAS_TERMINATION_MESSAGE_PATH: messagePath,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  let stdout = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) =>
    child.on("exit", (c, s) => {
      res([c, s]);
    }),
  );
  clearTimeout(timer);
  const message = await readFile(messagePath, "utf8").catch(() => undefined);
  return { code, signal, stderr, stdout, message };
}

/** Names in dir other than the expected ones (leftover staging directories show up here). */
export async function strayEntries(dir: string, expected: readonly string[]): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !expected.includes(n) && n !== "termination-log");
}
