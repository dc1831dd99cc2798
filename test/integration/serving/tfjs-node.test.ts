// The serving image on its `tensorflow` backend (tfjs-node, as the CPU image runs it): a SavedModel made
// by TensorFlow itself and a TF.js graph model, served by the real server process from the image's
// node_modules with tfjs-node's binding built against the TensorFlow wheel that CI installs
// (test/requirements.txt; test/testbed/tfjs-node.ts says why it is built here and how).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { availableParallelism } from "node:os";
import { rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { cacheRoot } from "../../testbed/paths.ts";
import { ensureTfjsNodeTree, tensorflowOf, tfjsNodeCheckout } from "../../testbed/tfjs-node.ts";
import { assertClose, copyHumanModel, directModel, seededFloats, tempDir } from "./fixtures.ts";
import { getJson, postJson, startServing, tritonClient, type ServingProcess } from "./harness.ts";

const run = promisify(execFile);

// make_saved_model.py's weights: probabilities = softmax(features @ W + b).
const W = [
  [0.5, -1.0, 0.25],
  [1.5, 0.0, -0.5],
  [-2.0, 1.0, 0.75],
  [0.1, 0.2, 0.3],
];
const B = [0.1, -0.2, 0.05];
function expected(rows: readonly (readonly number[])[]): number[] {
  return rows.flatMap((x) => {
    const z = B.map((b, j) => b + x.reduce((sum, xi, i) => sum + xi * W[i]![j]!, 0));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const total = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / total);
  });
}

function loadedLine(server: ServingProcess): Record<string, unknown> {
  const line = server.logs.find((l) => (l as { msg?: string }).msg === "Loaded and warmed up the model");
  assert.ok(line !== undefined, `no "Loaded" log line: ${JSON.stringify(server.logs)}`);
  return line as Record<string, unknown>;
}

describe("maas-serving on tfjs-node (the CPU image's tensorflow backend)", function () {
  this.timeout(300_000);
  let work: string;
  let checkout: string;
  before(async () => {
    const tf = await tensorflowOf("python3").catch((err: unknown) => {
      throw new Error(`${(err as Error).message}: run pip install -r test/requirements.txt`, { cause: err });
    });
    const tree = await ensureTfjsNodeTree(tf, cacheRoot());
    checkout = await tfjsNodeCheckout(tree);
    work = await tempDir("tfjs-node");
  });
  after(async () => {
    if (checkout !== undefined) await rm(checkout, { recursive: true, force: true });
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });
  const main = (): string => path.join(checkout, "serving-image/src/main.ts");

  describe("a SavedModel written by TensorFlow", function () {
    let server: ServingProcess;
    before(async () => {
      const dir = path.join(work, "saved-model");
      await run("python3", [path.join(import.meta.dirname, "make_saved_model.py"), dir]);
      server = await startServing(dir, { MAAS_MODEL_FORMAT: "tf-saved-model" }, main());
      await server.waitReady(120_000);
    });
    after(async () => {
      await server?.stop();
    });

    it("loads on the tensorflow backend auto picks (the GPU one skipped with its reason), with one core left to HTTP", function () {
      const loaded = loadedLine(server);
      assert.equal(loaded["backend"], "tensorflow");
      const skipped = loaded["skippedBackends"] as string[];
      assert.equal(skipped.length, 1, JSON.stringify(skipped));
      assert.match(skipped[0]!, /^tensorflow-gpu: /);
      const cores = availableParallelism();
      assert.deepEqual(loaded["tensorflowThreads"], {
        intraOp: String(Math.max(1, cores - 1)),
        interOp: String(Math.max(1, cores - 1)),
      });
      assert.deepEqual(loaded["inputs"], [
        { name: "features", tensorName: "serving_default_features:0", dtype: "float32", shape: [-1, 4] },
      ]);
    });

    it("reports the signature's shapes as numbers in both protocols' metadata", async () => {
      const v2 = await getJson(`${server.url}/v2/models/model`);
      assert.equal(v2.status, 200);
      assert.equal(v2.json["platform"], "tensorflow_savedmodel");
      assert.deepEqual(v2.json["inputs"], [{ name: "features", datatype: "FP32", shape: [-1, 4] }]);
      assert.deepEqual(v2.json["outputs"], [{ name: "probabilities", datatype: "FP32", shape: [-1, 3] }]);
      const v1 = await getJson(`${server.url}/v1/models/model/metadata`);
      assert.equal(v1.status, 200);
      const inputs = (
        v1.json["metadata"] as {
          signature_def: { signature_def: { serving_default: { inputs: Record<string, unknown> } } };
        }
      ).signature_def.signature_def.serving_default.inputs;
      assert.deepEqual(inputs, {
        features: {
          dtype: "DT_FLOAT",
          tensor_shape: {
            dim: [
              { size: "-1", name: "" },
              { size: "4", name: "" },
            ],
            unknown_rank: false,
          },
          name: "serving_default_features:0",
        },
      });
    });

    it("answers TF Serving and Open Inference Protocol requests with TensorFlow's numbers", async () => {
      const rows = [
        [0, 0, 0, 0],
        [1, 2, 3, 4],
        [-0.5, 0.25, 2, -1],
      ];
      const v1 = await postJson(`${server.url}/v1/models/model:predict`, { instances: rows });
      assert.equal(v1.status, 200, JSON.stringify(v1.json));
      const predictions = v1.json["predictions"] as number[][];
      assert.deepEqual(
        predictions.map((p) => p.length),
        [3, 3, 3],
      );
      assertClose(predictions.flat(), expected(rows), 1e-5, "v1 predictions");
      const v2 = await postJson(`${server.url}/v2/models/model/infer`, {
        inputs: [{ name: "features", shape: [3, 4], datatype: "FP32", data: rows.flat() }],
      });
      assert.equal(v2.status, 200, JSON.stringify(v2.json));
      const [out] = v2.json["outputs"] as { name: string; shape: number[]; data: number[] }[];
      assert.equal(out!.name, "probabilities");
      assert.deepEqual(out!.shape, [3, 3]);
      assertClose(out!.data, expected(rows), 1e-5, "v2 outputs");
    });

    it("refuses a wrong shape with a 400 naming it, and goes on serving", async () => {
      const bad = await postJson(`${server.url}/v1/models/model:predict`, { instances: [[1, 2, 3, 4, 5]] });
      assert.equal(bad.status, 400);
      assert.match(String(bad.json["error"]), /^Input 'features' .*has shape \[1,5\], but the model expects \[-1,4\]$/);
      const good = await postJson(`${server.url}/v1/models/model:predict`, { instances: [[1, 2, 3, 4]] });
      assert.equal(good.status, 200);
      assertClose((good.json["predictions"] as number[][]).flat(), expected([[1, 2, 3, 4]]), 1e-5);
    });
  });

  describe("a TF.js graph model", function () {
    let server: ServingProcess;
    let dir: string;
    before(async () => {
      dir = await copyHumanModel("liveness", path.join(work, "liveness"));
      server = await startServing(dir, { MAAS_BACKEND: "tensorflow", MAAS_SERVED_NAME: "liveness" }, main());
      await server.waitReady(120_000);
    });
    after(async () => {
      await server?.stop();
    });

    it("agrees with TF.js in-process, in JSON and in binary tensors through Triton's client", async () => {
      assert.equal(loadedLine(server)["backend"], "tensorflow");
      const shape = [2, 32, 32, 3];
      const data = seededFloats(7, 2 * 32 * 32 * 3);
      const seen = (await tritonClient(
        server.url,
        "liveness",
        { name: "conv2d_1_input", shape, data },
        work,
      )) as Record<string, { data: number[]; shape: number[] }>;
      const want = (await (await directModel(dir)).predict({ conv2d_1_input: { data, shape } }))["activation_6"]!.data;
      for (const mode of ["json", "binary"] as const) {
        assert.deepEqual(seen[mode]!.shape, [2, 2]);
        assertClose(seen[mode]!.data, want, 1e-5, mode);
      }
    });
  });
});
