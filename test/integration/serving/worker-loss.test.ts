// A dead inference worker, with real worker threads and a real model: the batch it held fails, the
// requests queued behind it go to its replacement as soon as that is up (not at their timeout), and
// a pool that cannot restart any worker says so instead of staying ready. A hung worker (a batch that
// never ends) is replaced too, in the real server process.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { DataPlane } from "../../../serving-image/src/dataplane.ts";
import { WorkerPool } from "../../../serving-image/src/inference/pool.ts";
import type { HostTensor } from "../../../serving-image/src/protocol/tensor.ts";
import { waitUntil } from "../../testbed/proc.ts";
import { saveHalfPlusThree, saveSpinningModel, tempDir } from "./fixtures.ts";
import { metricValue, postJson, startServing, type ServingProcess } from "./harness.ts";

const x = (...values: number[]): Map<string, HostTensor> =>
  new Map([["x", { dtype: "float32", shape: [values.length], data: Float32Array.from(values) }]]);

describe("maas-serving when an inference worker dies", function () {
  this.timeout(60_000);
  let dir: string;
  let modelDir: string;
  before(async () => {
    dir = await tempDir("worker-loss");
    modelDir = await saveHalfPlusThree(join(dir, "model"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function start() {
    const restarts: (string | undefined)[] = [];
    const exhausted: string[] = [];
    const { pool, ready } = await WorkerPool.start({ modelPath: modelDir, format: "tfjs-graph", backend: "cpu" }, 1, {
      onWorkerRestart: (error) => restarts.push(error),
      onExhausted: (reason) => exhausted.push(reason),
    });
    // Without the wake-up on a replacement, the queued requests would fail at this queue timeout.
    const plane = new DataPlane({
      name: "half",
      version: "1",
      maxBatchSize: 1,
      maxDelayMs: 0,
      maxQueue: 8,
      requestTimeoutMs: 30_000,
    });
    plane.attach(pool, ready.platform, ready.signature, ready.batchable);
    return { pool, plane, restarts, exhausted };
  }

  it("fails the batch it held and serves the queued requests on its replacement", async () => {
    const { pool, plane, restarts, exhausted } = await start();
    try {
      // Five million rows keep the worker busy far longer than it takes to terminate it, so the
      // batch is surely in flight when the worker dies.
      const held = plane.infer(
        new Map([["x", { dtype: "float32", shape: [5_000_000], data: new Float32Array(5_000_000) }]]),
      );
      const queued = [plane.infer(x(2)), plane.infer(x(4))];
      await pool.threads[0]!.terminate();
      await assert.rejects(held, /inference worker exited/);
      const answers = await Promise.all(queued);
      assert.deepEqual(
        answers.map((a) => Array.from(a.get("y")!.data as Float32Array)),
        [[4], [5]],
      );
      assert.deepEqual(restarts, [undefined], "one replacement, started cleanly");
      assert.deepEqual(exhausted, []);
    } finally {
      await pool.close();
    }
  });

  it("says so when no worker is left and none can be restarted (serve then stops being ready)", async () => {
    const { pool, restarts, exhausted } = await start();
    try {
      // The model is gone when the replacement tries to load it.
      await rm(modelDir, { recursive: true, force: true });
      await pool.threads[0]!.terminate();
      await waitUntil("the replacement's attempt", () => Promise.resolve(restarts.length > 0), 15_000);
      assert.equal(restarts.length, 1);
      assert.equal(pool.size, 0);
      assert.equal(exhausted.length, 1);
      assert.match(
        exhausted[0]!,
        /^Every inference worker is gone \(inference worker exited with code \d+\); starting a new one failed: .+/,
      );
      assert.equal(pool.threads.length, 0, "the failed replacement thread was not left running");
    } finally {
      await pool.close();
      modelDir = await saveHalfPlusThree(join(dir, "model"));
    }
  });
});

describe("maas-serving when an inference worker hangs", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await tempDir("hung-worker");
    const modelDir = await saveSpinningModel(join(dir, "model"));
    server = await startServing(modelDir, {
      MAAS_BACKEND: "cpu",
      MAAS_WORKERS: "1",
      MAAS_REQUEST_TIMEOUT_MS: "1000",
    });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers the batch that hangs with 504, replaces its worker, counts it, and serves later requests on the replacement", async () => {
    const url = `${server.url}/v1/models/model:predict`;
    const metric = (name: string, labels: Record<string, string> = {}) => metricValue(server.metricsUrl, name, labels);
    assert.equal(await metric("maas_inference_workers_replaced_total", { reason: "hung" }), 0);
    const hung = await postJson(url, { instances: [1] });
    assert.equal(hung.status, 504);
    assert.equal(hung.json["error"], "Request timed out after 1000 ms while the model ran it");
    await waitUntil(
      "the hung worker's replacement to serve",
      async () =>
        (await metric("maas_inference_workers_replaced_total", { reason: "hung" })) === 1 &&
        (await metric("maas_inference_workers")) === 1,
      20_000,
    );
    const next = await postJson(url, { instances: [-1, -2] });
    assert.equal(next.status, 200, JSON.stringify(next.json));
    assert.deepEqual(next.json, { predictions: [-1, -2] });
    const replaced = server.logs.find((l) => (l as { cause?: string }).cause === "hung") as { reason?: string };
    assert.match(
      replaced.reason ?? "",
      /^the inference worker ran one batch for more than 2000 ms and was replaced$/,
      JSON.stringify(server.logs),
    );
    assert.equal(await metric("maas_inference_workers_replaced_total", { reason: "crashed" }), 0);
    assert.equal(await metric("maas_inference_workers_replaced_total", { reason: "exited" }), 0);
  });
});
