/**
 * The `serve` command's configuration, read from the environment the operator renders (see contract.ts).
 */
import { Backends, Defaults, Env, ModelFormats, Paths, Ports, type Backend, type ModelFormat } from "./contract.ts";
import { MODEL_VERSION_MESSAGE, SERVED_NAME_MESSAGE, isModelVersion, isServedName } from "./grammar.ts";
import type { MemoryLimits } from "./memory-limits.ts";

/**
 * The share of the process's memory that request bodies may hold by default. The rest is the model, the
 * runtime, and the copies a body passes through while it is parsed (its text, the parsed JSON, the tensors).
 */
const bodyMemoryShare = 1 / 4;
/** By default one client address may be sending at most this share of the queue's requests. */
const clientQueueShare = 1 / 8;

export interface ServeConfig {
  readonly servedName: string;
  readonly modelVersion: string;
  readonly modelDir: string;
  readonly modelFormat: ModelFormat | undefined;
  readonly backend: Backend;
  readonly maxBatchSize: number;
  readonly maxBatchDelayMs: number;
  readonly maxQueue: number;
  readonly requestTimeoutMs: number;
  readonly workers: number;
  /** Cores to size workers and TensorFlow's threads by (MAAS_CPUS); 0 = the machine's. */
  readonly cpus: number;
  readonly httpPort: number;
  readonly metricsPort: number;
  readonly maxBodyBytes: number;
  readonly bodyTimeoutMs: number;
  readonly bodyIdleTimeoutMs: number;
  /** Bytes of request bodies held at once, from MAAS_BODY_MEMORY_BYTES or derived from the memory limits. */
  readonly bodyMemoryBytes: number;
  /** Where bodyMemoryBytes came from, for the start-up log. */
  readonly bodyMemorySource: string;
  /** Request bodies one client address may be sending at once; 0 = no limit. */
  readonly maxBodiesPerClient: number;
  readonly drainTimeoutMs: number;
  readonly shutdownDelayMs: number;
  readonly deployment: string;
  readonly namespace: string;
  /** Exit 1 with a termination message when the model cannot be loaded (set by the operator). */
  readonly exitOnLoadFailure: boolean;
  readonly terminationMessagePath: string;
}

/** The default body budget: a share of the smaller of the container's memory limit and the JS heap limit. */
export function defaultBodyMemory(limits: MemoryLimits): { bytes: number; source: string } {
  const container = limits.containerBytes ?? Infinity;
  const [bytes, source] =
    container < limits.heapBytes
      ? [container, `the container's memory limit of ${container} bytes`]
      : [limits.heapBytes, `the JS heap limit of ${limits.heapBytes} bytes`];
  return { bytes: Math.floor(bytes * bodyMemoryShare), source: `${bodyMemoryShare * 100}% of ${source}` };
}

/**
 * Reads the configuration. Values that are set but invalid are collected in `problems` (each naming
 * the variable) and replaced by the default, so the server can still start and report them.
 */
export function readServeConfig(
  env: NodeJS.ProcessEnv,
  memory: MemoryLimits,
): { config: ServeConfig; problems: string[] } {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!(n >= min && n <= max)) {
      problems.push(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
      return fallback;
    }
    return n;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T | undefined): T | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
      return fallback;
    }
    return raw as T;
  };
  // The served name and the version follow the grammar the CRD enforces (grammar.ts), so the API
  // server and this image accept exactly the same values.
  const grammar = (name: string, ok: (v: string) => boolean, message: string, fallback: string): string => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    if (!ok(raw)) {
      problems.push(`${name}: ${message}, got "${raw}"`);
      return fallback;
    }
    return raw;
  };
  const maxQueue = int(Env.maxQueue, Defaults.maxQueue, 1, 1_000_000);
  const derivedBodyMemory = defaultBodyMemory(memory);
  const bodyMemoryBytes = int(Env.bodyMemoryBytes, derivedBodyMemory.bytes, 1);
  const config: ServeConfig = {
    servedName: grammar(Env.servedName, isServedName, SERVED_NAME_MESSAGE, "model"),
    // TF Serving reports versions as numbers: "007" is version 7.
    modelVersion: String(Number(grammar(Env.modelVersion, isModelVersion, MODEL_VERSION_MESSAGE, "1"))),
    modelDir: env[Env.modelDir] || Paths.fetchedModelDir,
    modelFormat: oneOf(Env.modelFormat, ModelFormats, undefined),
    backend: oneOf(Env.backend, Backends, "auto") ?? "auto",
    maxBatchSize: int(Env.maxBatchSize, Defaults.maxBatchSize, 1, 65536),
    maxBatchDelayMs: int(Env.maxBatchDelayMs, Defaults.maxBatchDelayMs, 0, 60_000),
    maxQueue,
    requestTimeoutMs: int(Env.requestTimeoutMs, Defaults.requestTimeoutMs, 1, 3_600_000),
    workers: int(Env.workers, 0, 0, 256),
    cpus: int(Env.cpus, 0, 0),
    httpPort: int(Env.httpPort, Ports.http, 0, 65535),
    metricsPort: int(Env.metricsPort, Ports.metrics, 0, 65535),
    maxBodyBytes: int(Env.maxBodyBytes, Defaults.maxBodyBytes, 1),
    bodyTimeoutMs: int(Env.bodyTimeoutMs, Defaults.bodyTimeoutMs, 1),
    bodyIdleTimeoutMs: int(Env.bodyIdleTimeoutMs, Defaults.bodyIdleTimeoutMs, 1),
    bodyMemoryBytes,
    bodyMemorySource: env[Env.bodyMemoryBytes] ? Env.bodyMemoryBytes : derivedBodyMemory.source,
    maxBodiesPerClient: int(Env.maxBodiesPerClient, Math.max(1, Math.ceil(maxQueue * clientQueueShare)), 0),
    drainTimeoutMs: int(Env.drainTimeoutMs, Defaults.drainTimeoutMs, 0),
    shutdownDelayMs: int(Env.shutdownDelayMs, 0, 0, 600_000),
    exitOnLoadFailure: oneOf(Env.exitOnLoadFailure, ["true", "false"], "false") === "true",
    terminationMessagePath: env[Env.terminationMessagePath] || Paths.terminationMessage,
    deployment: env[Env.deploymentName] ?? "",
    namespace: env[Env.deploymentNamespace] ?? "",
  };
  return { config, problems };
}
