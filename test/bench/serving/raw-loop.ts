/**
 * The limit a server is measured against: the model's predict called in a tight loop in-process
 * (wasm), batch by batch, with no HTTP, no JSON and no queue. Run on one or more worker threads at
 * once (each with its own runtime and model copy, as the serving image's workers), so the two-thread
 * figure is what two cores can do at best.
 */
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { wasmDirectory } from "../../../serving-image/src/backends/select.ts";
import { readModelArtifacts } from "../../../serving-image/src/model/artifacts.ts";

export interface RawResult {
  batch: number;
  /** Rows per second, all threads together. */
  rowsPerSec: number;
  /** Milliseconds per batch on one thread. */
  msPerBatch: number;
}

interface Job {
  dir: string;
  batches: number[];
  ms: number;
  /** Every thread waits here before each batch size, so the threads measure at the same time. */
  gate: SharedArrayBuffer;
  threads: number;
}

async function measure(job: Job): Promise<{ batch: number; batches: number; ms: number }[]> {
  tf.enableProdMode();
  setWasmPaths(wasmDirectory());
  await tf.setBackend("wasm");
  const { artifacts } = await readModelArtifacts(tf.io, path.join(job.dir, "model.json"));
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const gate = new Int32Array(job.gate);
  const out = [];
  for (const [round, batch] of job.batches.entries()) {
    const x = tf.randomUniform([batch, 32, 32, 3]);
    const run = (): void => {
      const y = model.execute(x) as tf.Tensor;
      y.dataSync();
      y.dispose();
    };
    for (let i = 0; i < 3; i++) run();
    // A barrier: the last thread to arrive releases the others.
    if (Atomics.add(gate, 0, 1) === (round + 1) * job.threads - 1) Atomics.notify(gate, 0);
    else while (Atomics.load(gate, 0) < (round + 1) * job.threads) Atomics.wait(gate, 0, Atomics.load(gate, 0), 50);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < job.ms) {
      run();
      n++;
    }
    out.push({ batch, batches: n, ms: performance.now() - t0 });
    x.dispose();
  }
  model.dispose();
  return out;
}

/** Runs the loop on `threads` worker threads at once; rows per second summed over the threads. */
export async function rawLoop(dir: string, threads: number, batches: number[], ms = 1500): Promise<RawResult[]> {
  const job: Job = { dir, batches, ms, gate: new SharedArrayBuffer(4), threads };
  const perThread = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<{ batch: number; batches: number; ms: number }[]>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: job });
          w.once("message", resolve);
          w.once("error", reject);
          w.once("exit", (code) => {
            if (code !== 0) reject(new Error(`raw loop thread exited with ${code}`));
          });
        }),
    ),
  );
  return batches.map((batch, b) => {
    const runs = perThread.map((t) => t[b]!);
    return {
      batch,
      rowsPerSec: runs.reduce((sum, r) => sum + (r.batches * batch * 1000) / r.ms, 0),
      msPerBatch: runs.reduce((sum, r) => sum + r.ms / r.batches, 0) / runs.length,
    };
  });
}

if (!isMainThread) {
  parentPort!.postMessage(await measure(workerData as Job));
}
