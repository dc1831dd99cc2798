/**
 * maas-serving on the `tensorflow` backend (tfjs-node), as the CPU image runs it, for
 * `npm run bench:serving`: the image's node_modules with tfjs-node's binding built here against the
 * TensorFlow wheel in KServe's virtualenv (test/testbed/tfjs-node.ts says how and why), cached under
 * ~/.cache/maas-bench/. Where that cannot be done here, the contenders are recorded as not measured
 * with the reason.
 *
 * `node test/bench/serving/tfjs-node.ts raw <tree> <model dir> <format> <batches> <ms>` is the raw
 * predict loop on this backend (one process: TF spreads each batch over its intra-op threads); it
 * prints one JSON line of RawResult[].
 */
import { createRequire } from "node:module";
import { availableParallelism, homedir } from "node:os";
import path from "node:path";
import type * as tfjs from "@tensorflow/tfjs";
import {
  defaultTensorflowThreads,
  restoreIsNullOrUndefined,
  TensorflowThreadVariables,
} from "../../../serving-image/src/backends/select.ts";
import { readModelArtifacts } from "../../../serving-image/src/model/artifacts.ts";
import { ensureTfjsNodeTree, tensorflowOf, tfjsNodeCheckout } from "../../testbed/tfjs-node.ts";
import { ContenderUnavailable, run } from "./kserve.ts";
import type { RawResult } from "./raw-loop.ts";

/** The tree and a checkout of the serving image on it, for the TensorFlow in KServe's `venv`. */
export async function prepareTfjsNode(venv: string): Promise<{ tree: string; checkout: string; tensorflow: string }> {
  try {
    const tf = await tensorflowOf(path.join(venv, "bin/python"));
    const tree = await ensureTfjsNodeTree(tf, path.join(homedir(), ".cache/maas-bench"));
    return { tree, checkout: await tfjsNodeCheckout(tree), tensorflow: tf.version };
  } catch (err) {
    throw new ContenderUnavailable((err as Error).message);
  }
}

/** tfjs-node as `tree` has it (with the Node 23+ util shim), in production mode. */
export type TfjsNode = typeof tfjs & {
  node: { loadSavedModel(dir: string): Promise<{ predict(x: tfjs.Tensor): tfjs.Tensor | tfjs.NamedTensorMap }> };
};
export function loadTfjsNode(tree: string): TfjsNode {
  restoreIsNullOrUndefined();
  const tf = createRequire(path.join(tree, "package.json"))("@tensorflow/tfjs-node") as TfjsNode;
  tf.enableProdMode();
  return tf;
}

/** The SavedModel in `dir` as one function: its (first) output for an input tensor. */
export async function savedModelPredictor(tf: TfjsNode, dir: string): Promise<(x: tfjs.Tensor) => tfjs.Tensor> {
  const model = await tf.node.loadSavedModel(dir);
  return (x) => {
    const y = model.predict(x);
    return y instanceof tf.Tensor ? y : Object.values(y)[0]!;
  };
}

/** The raw loop on tfjs-node, in a child process (tfjs-node must not load into the bench's own runtime). */
export async function rawLoopTfjsNode(
  tree: string,
  modelDir: string,
  format: "tfjs-graph" | "tf-saved-model",
  batches: number[],
  threads: "as-served" | "tensorflow-default" = "as-served",
  ms = 1500,
): Promise<RawResult[]> {
  const out = await run(`the raw loop on tfjs-node (${format}) failed`, process.execPath, [
    import.meta.filename,
    "raw",
    tree,
    modelDir,
    format,
    batches.join(","),
    String(ms),
    threads,
  ]);
  const last = out.split("\n").findLast((l) => l.startsWith("["));
  if (last === undefined) throw new ContenderUnavailable(`the raw loop on tfjs-node printed no result: ${out}`);
  return JSON.parse(last) as RawResult[];
}

async function rawMain(
  tree: string,
  modelDir: string,
  format: string,
  batches: number[],
  ms: number,
  threads: string,
): Promise<void> {
  // "as-served": TF's intra-op threads set as maas-serving sets them before its workers start.
  // The servers start with a clean environment, so whatever this process inherited goes first.
  for (const name of Object.values(TensorflowThreadVariables)) Reflect.deleteProperty(process.env, name);
  if (threads === "as-served") defaultTensorflowThreads(process.env, availableParallelism());
  const tf = loadTfjsNode(tree);
  let predict: (x: tfjs.Tensor) => tfjs.Tensor;
  if (format === "tf-saved-model") {
    predict = await savedModelPredictor(tf, modelDir);
  } else {
    const { artifacts } = await readModelArtifacts(tf.io, path.join(modelDir, "model.json"));
    const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
    predict = (x) => model.execute(x) as tfjs.Tensor;
  }
  const results: RawResult[] = [];
  for (const batch of batches) {
    const x = tf.randomUniform([batch, 32, 32, 3]);
    const once = (): void => {
      const y = predict(x);
      y.dataSync();
      y.dispose();
    };
    for (let i = 0; i < 3; i++) once();
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      once();
      n++;
    }
    const elapsed = performance.now() - t0;
    results.push({ batch, rowsPerSec: (n * batch * 1000) / elapsed, msPerBatch: elapsed / n });
    x.dispose();
  }
  console.log(JSON.stringify(results));
}

if (import.meta.main) {
  const [mode, tree, modelDir, format, batches, ms, threads] = process.argv.slice(2);
  if (mode !== "raw" || tree === undefined || modelDir === undefined || format === undefined || batches === undefined)
    throw new Error(
      "usage: tfjs-node.ts raw <tree> <model dir> <tfjs-graph|tf-saved-model> <batches> [ms] [as-served|tensorflow-default]",
    );
  await rawMain(tree, modelDir, format, batches.split(",").map(Number), Number(ms ?? "1500"), threads ?? "as-served");
}
