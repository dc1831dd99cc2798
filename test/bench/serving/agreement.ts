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

/** The predictions of the TF.js graph model in `modelDir` for `instances`, on the current tf backend. */
export async function referencePredictions(modelDir: string, instances: unknown[]): Promise<number[][]> {
  const { artifacts } = await readModelArtifacts(tf.io, path.join(modelDir, "model.json"));
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const y = model.execute(tf.tensor(instances as number[][][][])) as tf.Tensor;
  const predictions = (await y.array()) as number[][];
  y.dispose();
  model.dispose();
  return predictions;
}

export type Agreement = { agrees: true; maxAbsDifference: number } | { agrees: false; reason: string };

/** Sends `instances` to a TF Serving v1 predict URL and compares the answer with `reference`. */
export async function checkAgreement(url: string, instances: unknown[], reference: number[][]): Promise<Agreement> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ instances }),
  }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  if (res instanceof Error) return { agrees: false, reason: `no answer: ${res.message}` };
  const text = await res.text();
  const predictions = res.ok ? (JSON.parse(text) as { predictions?: unknown }).predictions : undefined;
  const rows = Array.isArray(predictions) ? (predictions as unknown[]) : [];
  const sameShape =
    rows.length === reference.length &&
    rows.every((row, i) => Array.isArray(row) && row.length === reference[i]!.length && row.every(Number.isFinite));
  if (!sameShape) return { agrees: false, reason: `answered ${res.status} ${text.slice(0, 200)}` };
  const maxAbsDifference = Math.max(
    ...(rows as number[][]).flatMap((row, i) => row.map((v, j) => Math.abs(v - reference[i]![j]!))),
  );
  return maxAbsDifference <= maxAbsDifferenceAllowed
    ? { agrees: true, maxAbsDifference }
    : { agrees: false, reason: `predictions differ by up to ${maxAbsDifference.toExponential(2)}` };
}
