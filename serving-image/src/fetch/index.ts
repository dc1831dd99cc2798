/**
 * `maas-serving fetch`: puts the model named by MAAS_MODEL_URI into MAAS_MODEL_DIR for `serve`.
 *
 * Sources: http(s) and s3 URIs naming a TF.js model.json (the weight shards it lists are fetched from
 * beside it) or a single file; file:// and pvc:// paths naming a model.json, a single file or a whole
 * directory (for SavedModels). Everything lands in a staging directory next to the target and is renamed
 * into place only after every file is complete, fsynced and, when MAAS_MODEL_SHA256 is set, verified
 * (digest.ts defines what the digest covers). On failure one line goes to the termination-message file.
 */
import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import pino from "pino";
import type { Logger } from "pino";
import { parseFetchConfig, secretValues, terminationMessagePath, type FetchConfig } from "./config.ts";
import { hashDirectory, manifestDigest } from "./digest.ts";
import { ExitCodes, FetchError, localError } from "./errors.ts";
import { weightPaths } from "./manifest.ts";
import { withRetries } from "./retry.ts";
import { HttpSource, LocalSource, S3Source, listLocalTree } from "./sources.ts";
import { commitStaging, createStaging, discardStaging, syncTree } from "./stage.ts";
import { ByteBudget, transferOnce, type Source } from "./transfer.ts";
import { Env, TerminationPrefixes } from "../contract.ts";
import { terminationLine, writeTerminationMessage } from "../termination.ts";
import { checkPathSegments, redactText, redactUri, splitPath, uriSecrets } from "./uri.ts";

/** Prefix of every termination message, so the operator can recognise and surface it as is. */
export const failurePrefix = TerminationPrefixes.fetchFailed;
/** Weight shards fetched at the same time. */
const parallelFiles = 4;

/** The plan for one fetch: which source, and which files of it (paths relative to the entry's directory). */
interface Plan {
  readonly source: Source;
  /** model.json to read and follow, a single file, or an explicit list (directory copy). */
  readonly entry:
    | { readonly kind: "manifest"; readonly name: string }
    | { readonly kind: "files"; readonly files: readonly string[] };
  readonly close?: () => void;
}

/**
 * Runs the fetch command with the given environment and returns the process exit code (0 on success,
 * 1 when the model could not be fetched or verified, 2 for an unusable environment). Never throws.
 */
export async function runFetch(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const log = pino(
    { base: { cmd: "fetch" }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ fd: 2, sync: true }),
  );
  const secrets = [...secretValues(env), ...uriSecrets(env[Env.modelUri] ?? "")];
  let config: FetchConfig;
  try {
    config = parseFetchConfig(env);
  } catch (err) {
    await fail(log, terminationMessagePath(env), err, secrets);
    return ExitCodes.badConfig;
  }
  const started = Date.now();
  log.info(
    { uri: redactUri(config.uri), target: config.targetDir, sha256: config.sha256 ?? null, maxBytes: config.maxBytes },
    "fetching model",
  );
  try {
    const result = await fetchModel(config, log, secrets);
    log.info({ ...result, target: config.targetDir, durationMs: Date.now() - started }, "model ready");
    return ExitCodes.ok;
  } catch (err) {
    await fail(log, config.terminationMessagePath, err, secrets);
    return ExitCodes.failed;
  }
}

interface FetchResult {
  readonly files: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly reused: boolean;
}

async function fetchModel(config: FetchConfig, log: Logger, secrets: readonly string[]): Promise<FetchResult> {
  if (config.sha256 !== undefined) {
    const present = await existingModel(config.targetDir);
    if (present?.sha256 === config.sha256) {
      // An init container re-runs after a pod-level restart; the volume may already hold this exact model.
      log.info({ target: config.targetDir }, "target already holds a model with the expected sha256; nothing to fetch");
      return { ...present, reused: true };
    }
  }
  const deadline = AbortSignal.timeout(config.deadlineMs);
  const deadlineError = new FetchError(`gave up after ${config.deadlineMs} ms (MAAS_FETCH_DEADLINE_MS)`);
  const deadlineCtl = new AbortController();
  deadline.addEventListener(
    "abort",
    () => {
      deadlineCtl.abort(deadlineError);
    },
    { once: true },
  );
  // Aborted by the deadline, or by the first file that fails for good (the others need not finish).
  const stop = new AbortController();
  deadlineCtl.signal.addEventListener(
    "abort",
    () => {
      stop.abort(deadlineCtl.signal.reason);
    },
    { once: true },
  );
  const plan = await makePlan(config, log);
  const staging = await createStaging(config.targetDir);
  const budget = new ByteBudget(config.maxBytes);
  let committed = false;
  try {
    const get = async (rel: string, dest: string): Promise<void> => {
      const t0 = Date.now();
      const bytes = await withRetries(
        () =>
          transferOnce(plan.source, rel, join(staging, ...dest.split("/")), {
            budget,
            timeoutMs: config.timeoutMs,
            deadline: stop.signal,
          }),
        {
          retries: config.retries,
          backoffMs: config.backoffMs,
          signal: stop.signal,
          onRetry: (err, retry, delayMs) => {
            log.warn(
              { file: dest, retry, of: config.retries, delayMs, reason: redactText(err.message, secrets) },
              "retrying",
            );
          },
        },
      );
      log.info({ file: dest, bytes, ms: Date.now() - t0 }, "fetched");
    };
    if (plan.entry.kind === "manifest") {
      await forEachLimited([plan.entry.name], 1, stop, (name) => get(name, "model.json"));
      const text = await readFile(join(staging, "model.json"), "utf8");
      const shards = weightPaths(text, plan.source.describe(plan.entry.name).replace(/^GET |^read /, ""));
      await forEachLimited(shards, parallelFiles, stop, (p) => get(p, p));
    } else {
      await forEachLimited(plan.entry.files, parallelFiles, stop, (p) => get(p, p));
    }
    await syncTree(staging);
    const entries = await hashDirectory(staging);
    const digest = manifestDigest(entries);
    if (config.sha256 !== undefined && digest !== config.sha256) {
      throw new FetchError(`sha256 mismatch: expected ${config.sha256}, got ${digest} (over ${entries.length} files)`);
    }
    await commitStaging(staging, config.targetDir);
    committed = true;
    return { files: entries.length, bytes: budget.used, sha256: digest, reused: false };
  } finally {
    if (!committed) await discardStaging(staging);
    plan.close?.();
  }
}

async function makePlan(config: FetchConfig, log: Logger): Promise<Plan> {
  const loc = config.location;
  switch (loc.scheme) {
    case "http":
    case "https": {
      const name = loc.name;
      if (loc.scheme === "http" && config.http.authorization !== undefined) {
        log.warn({ uri: redactUri(config.uri) }, "sending credentials over plain http; use https");
      }
      return { source: new HttpSource(loc.url, name, config.http.authorization), entry: remoteEntry(name) };
    }
    case "s3": {
      const source = new S3Source(loc.bucket, loc.key, config.s3);
      return {
        source,
        entry: remoteEntry(source.entryName),
        close: () => {
          source.destroy();
        },
      };
    }
    case "file":
      return localPlan(loc.path);
    case "pvc":
      return localPlan(loc.path === "" ? config.sourceDir : join(config.sourceDir, ...loc.path.split("/")));
  }
}

function remoteEntry(name: string): Plan["entry"] {
  // The name becomes a file name in the staging directory; a decoded "%2F..%2F" must not walk out of it.
  checkPathSegments(name, "model URI");
  return name.toLowerCase().endsWith(".json") ? { kind: "manifest", name } : { kind: "files", files: [name] };
}

async function localPlan(path: string): Promise<Plan> {
  const st = await stat(path).catch((err: unknown) => {
    throw localError(err, `read ${path}`);
  });
  if (st.isDirectory()) {
    const files = await listLocalTree(path);
    if (files.length === 0) throw new FetchError(`read ${path}: the directory holds no files`);
    return { source: new LocalSource(path), entry: { kind: "files", files } };
  }
  const name = splitPath(path).name;
  return { source: new LocalSource(dirname(path)), entry: remoteEntry(name) };
}

/** File count, size and digest of the target directory if it exists, else undefined. */
async function existingModel(dir: string): Promise<{ files: number; bytes: number; sha256: string } | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return undefined;
    const entries = await hashDirectory(dir);
    let bytes = 0;
    for (const e of entries) bytes += (await stat(join(dir, ...e.path.split("/")))).size;
    return { files: entries.length, bytes, sha256: manifestDigest(entries) };
  } catch {
    return undefined;
  }
}

/**
 * Runs fn over items with at most `limit` at a time. The first failure aborts `stop` (so transfers in flight
 * end now instead of after their own retries) and is the error thrown, whatever the others then throw.
 */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  stop: AbortController,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let first: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (first === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        if (first === undefined) {
          first = { err };
          stop.abort(err);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (first !== undefined) throw first.err;
}

/** Formats the one-line termination message for an error (pure; secrets scrubbed, bounded length). */
export function failureLine(err: unknown, secrets: readonly string[]): string {
  const text =
    err instanceof FetchError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
  return terminationLine(failurePrefix, redactText(text, secrets));
}

async function fail(log: Logger, messagePath: string, err: unknown, secrets: readonly string[]): Promise<void> {
  const line = failureLine(err, secrets);
  log.error({ reason: line.slice(failurePrefix.length) }, "model fetch failed");
  await writeTerminationMessage(messagePath, line, log);
}
