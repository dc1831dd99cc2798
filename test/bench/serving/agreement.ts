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

/** One request carrying `instances` over `kind`, and how to read the predictions out of its answer. */
function agreementRequest(
  kind: WorkloadKind,
  instances: unknown[],
): { path: string; init: RequestInit; rows: (answer: Buffer, headers: Headers) => unknown } {
  const shape = [instances.length, 32, 32, 3];
  const flat = (instances as number[][][][]).flat(3);
  if (kind === "v1") {
    return {
      path: "/v1/models/model:predict",
      init: { headers: { "content-type": "application/json" }, body: JSON.stringify({ instances }) },
      rows: (answer) => (JSON.parse(answer.toString()) as { predictions?: unknown }).predictions,
    };
  }
  const input = { name: "conv2d_1_input", shape, datatype: "FP32" };
  // Outputs come back as one flat list (JSON) or float32 bytes (binary): two numbers per instance.
  const pairs = (values: ArrayLike<number>): number[][] =>
    Array.from({ length: values.length / 2 }, (_, i) => [values[2 * i]!, values[2 * i + 1]!]);
  if (kind === "v2json") {
    return {
      path: "/v2/models/model/infer",
      init: {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ inputs: [{ ...input, data: flat }] }),
      },
      rows: (answer) => {
        const out = (JSON.parse(answer.toString()) as { outputs?: { data?: number[] }[] }).outputs?.[0]?.data;
        return out === undefined ? undefined : pairs(out);
      },
    };
  }
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ ...input, parameters: { binary_data_size: flat.length * 4 } }],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    path: "/v2/models/model/infer",
    init: {
      headers: { "content-type": "application/octet-stream", "inference-header-content-length": String(header.length) },
      body: Buffer.concat([header, Buffer.from(new Float32Array(flat).buffer)]),
    },
    rows: (answer, headers) => {
      const at = Number(headers.get("inference-header-content-length"));
      if (!Number.isInteger(at) || at <= 0) return undefined;
      const bytes = answer.subarray(at);
      return pairs(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
    },
  };
}

/** Sends `instances` to the server at `base` over `kind` and compares the answer with `reference`. */
export async function checkAgreement(
  base: string,
  kind: WorkloadKind,
  instances: unknown[],
  reference: number[][],
): Promise<Agreement> {
  const { path: urlPath, init, rows: read } = agreementRequest(kind, instances);
  const res = await fetch(base + urlPath, { method: "POST", ...init }).catch((e: unknown) =>
    e instanceof Error ? e : new Error(String(e)),
  );
  if (res instanceof Error) return { agrees: false, reason: `no answer: ${res.message}` };
  const answer = Buffer.from(await res.arrayBuffer());
  let predictions: unknown;
  try {
    predictions = res.ok ? read(answer, res.headers) : undefined;
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
