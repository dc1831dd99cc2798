/**
 * The baseline most people write first: express.json() and one model.predict per request, on the
 * wasm backend, no batching, no workers. Used only by the serving benchmark.
 *
 * Usage: node naive-server.ts <model-dir>; prints {"port": n} once listening on 127.0.0.1.
 */
import type { AddressInfo } from "node:net";
import path from "node:path";
import express from "express";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { wasmDirectory } from "../../../serving-image/src/backends/select.ts";
import { readModelArtifacts } from "../../../serving-image/src/model/artifacts.ts";

const dir = process.argv[2]!;
tf.enableProdMode();
setWasmPaths(wasmDirectory());
await tf.setBackend("wasm");
const { artifacts } = await readModelArtifacts(tf.io, path.join(dir, "model.json"));
const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
const app = express();
app.use(express.json({ limit: "64mb" }));
app.post("/v1/models/model:predict", (req, res) => {
  const body = req.body as { instances: number[][][][] };
  const out = tf.tidy(() => model.execute(tf.tensor(body.instances)) as tf.Tensor);
  const predictions = out.arraySync();
  out.dispose();
  res.json({ predictions });
});
const server = app.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
