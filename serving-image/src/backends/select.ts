/**
 * Chooses and initialises the TensorFlow.js backend: the configured one, or the best available in the
 * order tensorflow-gpu ▸ tensorflow ▸ wasm ▸ cpu. The native packages are optional dependencies, so
 * they are probed with a dynamic import that fails cleanly when they are absent.
 */
import { createRequire } from "node:module";
import path from "node:path";
import util from "node:util";
import type * as tfjs from "@tensorflow/tfjs";
import type { Backend } from "../contract.ts";

export type ResolvedBackend = Exclude<Backend, "auto">;

/** The order `auto` tries. */
export const backendPreference: readonly ResolvedBackend[] = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"];

export interface BackendChoice {
  readonly backend: ResolvedBackend;
  /** The tfjs-node(-gpu) module when a native backend was chosen (SavedModel loading needs it). */
  readonly native: unknown;
  /** Why each better backend was skipped, for the startup log. */
  readonly skipped: readonly string[];
}

const nativePackages: Partial<Record<ResolvedBackend, string>> = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  tensorflow: "@tensorflow/tfjs-node",
};

/** The directory holding tfjs-backend-wasm's .wasm files, resolved from node_modules. */
export function wasmDirectory(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm")) + path.sep;
}

/**
 * tfjs-node 4.22 calls `util.isNullOrUndefined`, which Node 23 removed (tensorflow/tfjs#8609; the
 * fix is merged but unreleased). Puts it back on the shared `util` object before tfjs-node loads.
 */
export function restoreIsNullOrUndefined(): void {
  const u = util as unknown as Record<string, unknown>;
  if (typeof u.isNullOrUndefined !== "function") {
    u.isNullOrUndefined = (v: unknown): boolean => v === null || v === undefined;
  }
}

/** The variables TensorFlow reads (core/common_runtime/process_util.cc) for its thread pools' sizes. */
export const TensorflowThreadVariables = {
  intraOp: "TF_NUM_INTRAOP_THREADS",
  interOp: "TF_NUM_INTEROP_THREADS",
} as const;

/**
 * TensorFlow's pools (the native backends) take one thread per core of the machine by default, and
 * their threads spin while they wait for work; the main thread, which reads and answers every HTTP
 * request, then competes with them for a core. Unless the environment sets them, sets both
 * TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS to one less than `cores` (at least one; `cores`
 * being what the container requested, which on a big node is far fewer than the machine's).
 * On 2 cores (bench:serving, TensorFlow 2.21, medians of 3 rounds): one intra-op thread answered 31%
 * more requests than TensorFlow's defaults at one client (with 34% less CPU per request), 24% more
 * at 8, 11% more at 32 and 8% fewer at 64; then one inter-op thread instead of two answered 7–14%
 * more at one client in every round (14% less CPU per request), 10% more at 8 (two rounds of
 * three), within the rounds' spread at 32 and 64.
 * Call it in the main thread before the inference workers start: TensorFlow reads the process's real
 * environment, which a worker thread's `process.env` (a copy) does not change. Returns the values in effect.
 */
export function defaultTensorflowThreads(
  env: NodeJS.ProcessEnv,
  cores: number,
): { readonly intraOp: string; readonly interOp: string } {
  const value = (name: string, fallback: number): string => {
    const given = env[name];
    if (given !== undefined && given.trim() !== "") return given;
    env[name] = String(fallback);
    return env[name];
  };
  return {
    intraOp: value(TensorflowThreadVariables.intraOp, Math.max(1, cores - 1)),
    interOp: value(TensorflowThreadVariables.interOp, Math.max(1, cores - 1)),
  };
}

async function tryBackend(tf: typeof tfjs, backend: ResolvedBackend): Promise<unknown> {
  const pkg = nativePackages[backend];
  if (pkg !== undefined) {
    restoreIsNullOrUndefined();
    // A variable specifier keeps TypeScript from requiring the optional package at build time.
    const specifier: string = pkg;
    const native: unknown = await import(specifier);
    if (!(await tf.setBackend("tensorflow"))) throw new Error(`${pkg} loaded but its backend did not initialise`);
    return native;
  }
  if (backend === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    wasm.setWasmPaths(wasmDirectory());
    if (!(await tf.setBackend("wasm"))) throw new Error("the wasm backend did not initialise");
    return undefined;
  }
  if (!(await tf.setBackend("cpu"))) throw new Error("the cpu backend did not initialise");
  return undefined;
}

/** Initialises `requested` (or the best available for `auto`); throws naming why it is unavailable. */
export async function initBackend(tf: typeof tfjs, requested: Backend): Promise<BackendChoice> {
  const candidates = requested === "auto" ? backendPreference : [requested];
  const skipped: string[] = [];
  for (const backend of candidates) {
    try {
      const native = await tryBackend(tf, backend);
      await tf.ready();
      return { backend, native, skipped };
    } catch (err) {
      const reason = `${backend}: ${(err as Error).message.split("\n")[0] ?? ""}`;
      if (requested !== "auto") throw new Error(`Backend ${reason}`, { cause: err });
      skipped.push(reason);
    }
  }
  throw new Error(`No TensorFlow.js backend could initialise (${skipped.join("; ")})`);
}
