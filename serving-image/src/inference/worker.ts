/**
 * Inference worker thread: owns one TensorFlow.js runtime (its own backend instance and model copy),
 * loads and warms up the model, then runs batches posted by the main thread one at a time.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backends/select.ts";
import { loadModel, type LoadedModel } from "../model/load.ts";
import { locateModel } from "../model/locate.ts";
import { transferables, type FromWorker, type ToWorker, type WorkerInit } from "./messages.ts";

const port = parentPort;
if (port === null) throw new Error("inference/worker.ts must run as a worker thread");
const init = workerData as WorkerInit;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function start(): Promise<LoadedModel | undefined> {
  const t0 = performance.now();
  try {
    // Production mode skips debug checks and the "install tfjs-node" banner.
    tf.enableProdMode();
    const choice = await initBackend(tf, init.backend);
    const location = await locateModel(init.modelPath, init.format);
    const model = await loadModel(tf, location, init.format, choice.native);
    post({
      type: "ready",
      backend: choice.backend,
      skipped: choice.skipped,
      platform: model.platform,
      signature: model.signature,
      batchable: model.batchable,
      warnings: model.warnings,
      loadSeconds: (performance.now() - t0) / 1000,
    });
    return model;
  } catch (err) {
    post({ type: "failed", reason: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

const loading = start();
port.on("message", (msg: ToWorker) => {
  if (msg.type === "close") {
    port.close();
    return;
  }
  void loading.then(async (model) => {
    if (model === undefined) {
      post({ type: "error", id: msg.id, message: "model is not loaded" });
      return;
    }
    try {
      const outputs = await model.run(new Map(msg.inputs));
      post({ type: "result", id: msg.id, outputs: [...outputs.entries()] }, transferables(outputs.values()));
    } catch (err) {
      post({ type: "error", id: msg.id, message: err instanceof Error ? err.message : String(err) });
    }
  });
});
