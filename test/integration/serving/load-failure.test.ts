// A model that cannot be loaded, against the real server process: standalone it stays up and not
// ready with the reason; under the operator (MAAS_EXIT_ON_LOAD_FAILURE=true) it exits 1 with the
// reason in its termination message, which is what the kubelet puts in pod status.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Env, TerminationPrefixes } from "../../../serving-image/src/contract.ts";
import { waitUntil } from "../../testbed/proc.ts";
import { copyHumanModel, tempDir } from "./fixtures.ts";
import { getJson, rawRequest, startServing, type ServingProcess } from "./harness.ts";

async function exitCodeOf(server: ServingProcess, timeoutMs = 30_000): Promise<number | null> {
  if (server.child.exitCode !== null) return server.child.exitCode;
  const timer = setTimeout(() => server.child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(server.child, "exit")) as [number | null];
  clearTimeout(timer);
  return code;
}

describe("maas-serving with a model that cannot be loaded", function () {
  this.timeout(60_000);
  let dir: string;
  let modelDir: string;
  before(async () => {
    dir = await tempDir("load-failure");
    // A real model whose weight shard is cut short: model.json parses, loading the weights fails.
    modelDir = await copyHumanModel("liveness", join(dir, "model"));
    const manifest = JSON.parse(await readFile(join(modelDir, "model.json"), "utf8")) as {
      weightsManifest: { paths: string[] }[];
    };
    const shard = join(modelDir, manifest.weightsManifest[0]!.paths[0]!);
    await writeFile(shard, (await readFile(shard)).subarray(0, 100));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("stays up and not ready by default, with the reason in /v2 ready, /v1 status and predict", async () => {
    const server = await startServing(modelDir);
    try {
      // Not ready while loading too: wait for the load to fail (the reason replaces "loading").
      const ready = await waitUntil(
        "the load to fail",
        async () => {
          const r = await getJson(`${server.url}/v2/health/ready`);
          return JSON.stringify(r.json).includes("Failed to load") ? r : undefined;
        },
        30_000,
      );
      assert.equal(ready.status, 503);
      assert.match(
        String(ready.json["error"]),
        /Failed to load the model from .*: Weight shards hold 100 bytes, but model\.json's weightsManifest describes \d+/,
      );
      assert.equal((await rawRequest(`${server.url}/v2/health/live`)).status, 200);
      const status = await getJson(`${server.url}/v1/models/model`);
      assert.equal(status.status, 200);
      assert.match(JSON.stringify(status.json), /Failed to load the model/);
      const predict = await rawRequest(`${server.url}/v1/models/model:predict`, {
        method: "POST",
        body: JSON.stringify({ instances: [[1]] }),
      });
      assert.equal(predict.status, 503);
      assert.match(predict.body.toString(), /Failed to load the model/);
      assert.equal(server.child.exitCode, null, "the process keeps running");
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("exits 1 with the reason in its termination message when the operator asks for it", async () => {
    const messageFile = join(dir, "termination-log");
    const server = await startServing(modelDir, {
      [Env.exitOnLoadFailure]: "true",
      [Env.terminationMessagePath]: messageFile,
    });
    assert.equal(await exitCodeOf(server), 1);
    const message = await readFile(messageFile, "utf8");
    assert.ok(message.startsWith(TerminationPrefixes.loadFailed), message);
    assert.match(message, /^model load failed: Failed to load the model from .*: .+\n$/);
    assert.equal(message.trimEnd().split("\n").length, 1, "one line");
  });

  it("exits 1 naming the variable when its configuration is invalid and the operator asks for it", async () => {
    const messageFile = join(dir, "termination-log-config");
    const good = await copyHumanModel("liveness", join(dir, "good"));
    const server = await startServing(good, {
      [Env.exitOnLoadFailure]: "true",
      [Env.terminationMessagePath]: messageFile,
      [Env.maxQueue]: "lots",
    });
    assert.equal(await exitCodeOf(server), 1);
    assert.match(
      await readFile(messageFile, "utf8"),
      /^model load failed: Invalid configuration: MAAS_MAX_QUEUE must be an integer between 1 and \d+, got "lots"\n$/,
    );
  });
});
