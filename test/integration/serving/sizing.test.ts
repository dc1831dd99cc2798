// How many inference workers the real server starts: one per core the container requested
// (MAAS_CPUS, which the operator sets from resources.cpu), never more than the machine has, and the
// machine's cores when it runs standalone. A pod has no CPU limit, so it sees every core of its node.
import assert from "node:assert/strict";
import { availableParallelism } from "node:os";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { saveHalfPlusThree, tempDir } from "./fixtures.ts";
import { metricValue, postJson, startServing, type ServingProcess } from "./harness.ts";

describe("maas-serving sizes its inference workers by the cores it was given", function () {
  this.timeout(60_000);
  let dir: string;
  let modelDir: string;
  const servers: ServingProcess[] = [];
  before(async () => {
    dir = await tempDir("sizing");
    modelDir = await saveHalfPlusThree(join(dir, "model"));
  });
  after(async () => {
    for (const s of servers) await s.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function serve(
    env: Record<string, string>,
  ): Promise<{ server: ServingProcess; loaded: Record<string, unknown> }> {
    const server = await startServing(modelDir, { MAAS_BACKEND: "wasm", ...env });
    servers.push(server);
    await server.waitReady();
    const loaded = server.logs.find((l) => (l as { msg?: string }).msg === "Loaded and warmed up the model");
    assert.ok(loaded !== undefined, JSON.stringify(server.logs));
    const answer = await postJson(`${server.url}/v1/models/model:predict`, { instances: [1, 2] });
    assert.deepEqual(answer.json, { predictions: [3.5, 4] });
    return { server, loaded: loaded as Record<string, unknown> };
  }

  it("starts one worker for a container that requested one core, whatever the machine has", async () => {
    const { server, loaded } = await serve({ MAAS_CPUS: "1" });
    assert.equal(loaded["workers"], 1);
    assert.equal(loaded["cores"], 1);
    assert.equal(loaded["machineCores"], availableParallelism());
    assert.equal(await metricValue(server.metricsUrl, "maas_inference_workers"), 1);
    await server.stop();
  });

  it("takes no more cores than the machine has, and all of them standalone", async () => {
    const machine = availableParallelism();
    const many = await serve({ MAAS_CPUS: String(machine + 62) });
    assert.equal(many.loaded["cores"], machine);
    assert.equal(many.loaded["workers"], machine);
    const standalone = await serve({});
    assert.equal(standalone.loaded["cores"], machine);
    assert.equal(await metricValue(standalone.server.metricsUrl, "maas_inference_workers"), machine);
    await many.server.stop();
    await standalone.server.stop();
  });

  it("lets MAAS_WORKERS override the cores", async () => {
    const { loaded } = await serve({ MAAS_CPUS: "1", MAAS_WORKERS: "2" });
    assert.equal(loaded["workers"], 2);
  });
});
