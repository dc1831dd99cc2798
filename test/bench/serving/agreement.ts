/**
 * Correctness before timing: every server of the serving bench is sent the same seeded instances, and
 * its predictions are compared with the TF.js model's own, run in this process. A server that answers
 * differently is not timed (a fast wrong answer is no contender).
 */
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { readModelArtifacts } from "../../../serving-image/src/model/artifacts.ts";

/** The largest difference allowed between a server's prediction and the reference, per number. */
export const maxAbsDifferenceAllowed = 1e-4;

/** `count` instances of the given shape with values in [0, 1) from a seeded generator (mulberry32). */
export function seededInstances(seed: number, count: number, shape: readonly number[]): unknown[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const nest = (dims: readonly number[]): unknown =>
    dims.length === 0 ? next() : Array.from({ length: dims[0]! }, () => nest(dims.slice(1)));
  return Array.from({ length: count }, () => nest(shape));
}

/** The predictions of the TF.js graph model in `modelDir` for `instances`, on TF.js's cpu backend. */
export async function referencePredictions(modelDir: string, instances: unknown[]): Promise<number[][]> {
  // TF.js's plain JavaScript kernels: a reference that shares no code with the servers' wasm runtime.
  await tf.setBackend("cpu");
  const { artifacts } = await readModelArtifacts(tf.io, path.join(modelDir, "model.json"));
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const y = model.execute(tf.tensor(instances as number[][][][])) as tf.Tensor;
  const predictions = (await y.array()) as number[][];
  y.dispose();
  model.dispose();
  return predictions;
}

export type Agreement = { agrees: true; maxAbsDifference: number } | { agrees: false; reason: string };

/** The protocols a server is timed on: TF Serving v1 JSON, Open Inference Protocol JSON or binary. */
export type WorkloadKind = "v1" | "v2json" | "v2binary";

/** A request carrying `instances` over `kind`: what the bench times, and what it checks first. */
export interface WorkloadRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** The predictions in an answer to it, one row per instance (undefined if there are none). */
  rows: (answer: Buffer) => unknown;
}

/** The request for `instances` (of the bench's model: 32×32×3 images) over `kind`. */
export function workloadRequest(kind: WorkloadKind, instances: unknown[]): WorkloadRequest {
  if (kind === "v1") {
    return {
      path: "/v1/models/model:predict",
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ instances })),
      rows: (answer) => (JSON.parse(answer.toString()) as { predictions?: unknown }).predictions,
    };
  }
  const flat = (instances as number[][][][]).flat(3);
  const input = { name: "conv2d_1_input", shape: [instances.length, 32, 32, 3], datatype: "FP32" };
  // Outputs come back as one flat JSON list: two numbers per instance.
  const rows = (answer: Buffer): unknown => {
    const out = (JSON.parse(answer.toString()) as { outputs?: { data?: number[] }[] }).outputs?.[0]?.data;
    return out && Array.from({ length: out.length / 2 }, (_, i) => [out[2 * i]!, out[2 * i + 1]!]);
  };
  if (kind === "v2json") {
    return {
      path: "/v2/models/model/infer",
      headers: { "content-type": "application/json" },
      body: Buffer.from(JSON.stringify({ inputs: [{ ...input, data: flat }] })),
      rows,
    };
  }
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ ...input, parameters: { binary_data_size: flat.length * 4 } }] }),
  );
  return {
    path: "/v2/models/model/infer",
    headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(header.length) },
    body: Buffer.concat([header, Buffer.from(new Float32Array(flat).buffer)]),
    rows,
  };
}

/** Sends `instances` to the server at `base` over `kind` and compares the answer with `reference`. */
export async function checkAgreement(
  base: string,
  kind: WorkloadKind,
  instances: unknown[],
  reference: number[][],
): Promise<Agreement> {
  const request = workloadRequest(kind, instances);
  const res = await fetch(base + request.path, {
    method: "POST",
    headers: request.headers,
    body: request.body,
  }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  if (res instanceof Error) return { agrees: false, reason: `no answer: ${res.message}` };
  const answer = Buffer.from(await res.arrayBuffer());
  let predictions: unknown;
  try {
    predictions = res.ok ? request.rows(answer) : undefined;
  } catch {
    predictions = undefined;
  }
  const rows = Array.isArray(predictions) ? (predictions as unknown[]) : [];
  const sameShape =
    rows.length === reference.length &&
    rows.every((row, i) => Array.isArray(row) && row.length === reference[i]!.length && row.every(Number.isFinite));
  if (!sameShape) return { agrees: false, reason: `answered ${res.status} ${answer.toString().slice(0, 200)}` };
  const maxAbsDifference = Math.max(
    ...(rows as number[][]).flatMap((row, i) => row.map((v, j) => Math.abs(v - reference[i]![j]!))),
  );
  return maxAbsDifference <= maxAbsDifferenceAllowed
    ? { agrees: true, maxAbsDifference }
    : { agrees: false, reason: `predictions differ by up to ${maxAbsDifference.toExponential(2)}` };
}
