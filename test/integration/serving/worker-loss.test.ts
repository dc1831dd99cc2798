// A dead inference worker, with real worker threads and a real model: the batch it held fails, the
// requests queued behind it go to its replacement as soon as that is up (not at their timeout), and
// a pool that cannot restart any worker says so instead of staying ready.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { DataPlane } from "../../../serving-image/src/dataplane.ts";
import { WorkerPool } from "../../../serving-image/src/inference/pool.ts";
import type { HostTensor } from "../../../serving-image/src/protocol/tensor.ts";
import { waitUntil } from "../../testbed/proc.ts";
import { saveHalfPlusThree, tempDir } from "./fixtures.ts";

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
