/**
 * The baseline most people write first: express.json() and one model.predict per request, no
 * batching, no workers. On the wasm backend with the TF.js graph model, or, given the tfjs-node tree
 * of tfjs-node.ts, on tfjs-node with a SavedModel (TensorFlow's default threads, as a user would leave
 * them). Used only by the serving benchmark.
 *
 * Usage: node naive-server.ts <model-dir> [<tfjs-node tree>]; prints {"port": n} once listening on 127.0.0.1.
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import express from "express";
import type * as tfjs from "@tensorflow/tfjs";
import { wasmDirectory } from "../../../serving-image/src/backends/select.ts";
import { readModelArtifacts } from "../../../serving-image/src/model/artifacts.ts";
import { loadTfjsNode, savedModelPredictor } from "./tfjs-node.ts";

type Instances = number[][][][];
const [dir, tree] = process.argv.slice(2) as [string, string | undefined];
let predict: (instances: Instances) => unknown;
if (tree === undefined) {
  const tf = await import("@tensorflow/tfjs");
  const { setWasmPaths } = await import("@tensorflow/tfjs-backend-wasm");
  tf.enableProdMode();
  setWasmPaths(wasmDirectory());
  await tf.setBackend("wasm");
  const { artifacts } = await readModelArtifacts(tf.io, path.join(dir, "model.json"));
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  predict = (instances) => {
    const out = tf.tidy(() => model.execute(tf.tensor(instances)) as tfjs.Tensor);
    const predictions = out.arraySync();
    out.dispose();
    return predictions;
  };
} else {
  const tf = loadTfjsNode(tree);
  const savedModel = await savedModelPredictor(tf, dir);
  predict = (instances) => {
    const out = tf.tidy(() => savedModel(tf.tensor(instances)));
    const predictions = out.arraySync();
    out.dispose();
    return predictions;
  };
}
const app = express();
app.use(express.json({ limit: "64mb" }));
app.post("/v1/models/model:predict", (req, res) => {
  res.json({ predictions: predict((req.body as { instances: Instances }).instances) });
});
const server = app.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
