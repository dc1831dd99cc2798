import assert from "node:assert/strict";
import { ServingError } from "../../../serving-image/src/protocol/errors.ts";
import {
  concatRows,
  ownsBuffer,
  type HostTensor,
  type ModelSignature,
} from "../../../serving-image/src/protocol/tensor.ts";
import { decodeV1Predict, encodeV1Predict, parseV1Route } from "../../../serving-image/src/protocol/v1.ts";
import { decodeV2Infer, encodeV2Infer, parseV2Route } from "../../../serving-image/src/protocol/v2.ts";

const single: ModelSignature = {
  inputs: [{ name: "x", tensorName: "x:0", dtype: "float32", shape: [-1, 2] }],
  outputs: [{ name: "y", tensorName: "y:0", dtype: "float32", shape: [-1] }],
};

describe("TF Serving v1 codec", () => {
  const routes: [string, string, unknown][] = [
    ["GET", "/v1/models/m", { kind: "status", ref: { name: "m" } }],
    ["GET", "/V1/MODELS/m/versions/007", { kind: "status", ref: { name: "m", version: "7" } }],
    ["GET", "/v1/models/m/labels/stable/metadata", { kind: "metadata", ref: { name: "m", label: "stable" } }],
    ["POST", "/v1/models/m/versions/3:predict", { kind: "predict", ref: { name: "m", version: "3" } }],
    ["POST", "/v1/models/m:classify", { kind: "classify", ref: { name: "m" } }],
  ];
  for (const [method, path, expected] of routes) {
    it(`routes ${method} ${path}`, () => {
      assert.deepEqual(parseV1Route(method, path), expected);
    });
  }

  it("answers paths that fit no route with TF Serving's Malformed request", () => {
    assert.throws(
      () => parseV1Route("POST", "/v1/models/m:explain"),
      /^Error: Malformed request: POST \/v1\/models\/m:explain$|Malformed request: POST/,
    );
    assert.throws(() => parseV1Route("GET", "/v1/models"), /Missing model name in request\./);
  });

  it("decodes scalar instances of a one-input model into one tensor", () => {
    const sig: ModelSignature = {
      inputs: [{ name: "x", tensorName: "x:0", dtype: "float32", shape: [-1] }],
      outputs: single.outputs,
    };
    const req = decodeV1Predict({ instances: [1, 2, 5] }, sig);
    assert.equal(req.format, "row");
    assert.deepEqual(req.inputs.get("x")!.shape, [3]);
  });

  it("accepts a columnar object naming the only input", () => {
    const req = decodeV1Predict({ inputs: { x: [[1, 2]] } }, single);
    assert.deepEqual(req.inputs.get("x")!.shape, [1, 2]);
  });

  it("answers row requests with predictions and columnar ones with outputs", () => {
    const outputs = new Map([["y", { dtype: "float32" as const, shape: [2], data: new Float32Array([3.5, 4]) }]]);
    assert.equal(encodeV1Predict("row", outputs), '{"predictions":[3.5,4]}');
    assert.equal(encodeV1Predict("columnar", outputs), '{"outputs":[3.5,4]}');
  });

  it("refuses a row answer whose outputs disagree on the batch size, naming the output", () => {
    const outputs = new Map([
      ["a", { dtype: "float32" as const, shape: [2], data: new Float32Array(2) }],
      ["b", { dtype: "float32" as const, shape: [1], data: new Float32Array(1) }],
    ]);
    assert.throws(() => encodeV1Predict("row", outputs), /Tensor name: b has inconsistent batch size: 1 expecting: 2/);
  });
});

describe("Open Inference Protocol v2 codec", () => {
  it("routes health, metadata, ready and infer paths", () => {
    assert.deepEqual(parseV2Route("GET", "/v2/health/ready"), { kind: "ready" });
    assert.deepEqual(parseV2Route("GET", "/v2/models/m/versions/2/ready"), {
      kind: "model-ready",
      name: "m",
      version: "2",
    });
    assert.deepEqual(parseV2Route("POST", "/v2/models/m/infer"), { kind: "infer", name: "m" });
    assert.equal(parseV2Route("GET", "/v2/models/m/infer"), undefined);
  });

  it("decodes binary inputs after the JSON header and checks every byte is accounted for", () => {
    const head = Buffer.from(
      JSON.stringify({ inputs: [{ name: "x", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: 8 } }] }),
    );
    const body = Buffer.concat([head, Buffer.from(new Float32Array([1.5, -2]).buffer)]);
    const req = decodeV2Infer(body, head.length, "m", single);
    assert.deepEqual(Array.from(req.inputs.get("x")!.data as Float32Array), [1.5, -2]);
    assert.deepEqual(req.outputs, [{ name: "y", binary: false }]);
    assert.throws(
      () => decodeV2Infer(Buffer.concat([body, Buffer.alloc(3)]), head.length, "m", single),
      /3 bytes follow the JSON header/,
    );
  });

  it("views aligned binary inputs where they lie in the body, copies unaligned ones, and batches either into memory of its own", () => {
    const head = Buffer.from(
      JSON.stringify({ inputs: [{ name: "x", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: 8 } }] }),
    );
    const values = Buffer.from(new Float32Array([1.5, -2]).buffer);
    for (const shift of [0, 1, 2, 3]) {
      // The body placed so that its binary part starts `shift` bytes past an 8-byte boundary.
      const at = (8 - (head.length % 8)) % 8;
      const storage = Buffer.alloc(head.length + 8 + 16);
      const body = storage.subarray(at + shift, at + shift + head.length + 8);
      head.copy(body, 0);
      values.copy(body, head.length);
      const x = decodeV2Infer(body, head.length, "m", single).inputs.get("x")!;
      const data = x.data as Float32Array;
      assert.deepEqual(Array.from(data), [1.5, -2]);
      assert.equal(data.buffer === storage.buffer, shift === 0, `shift ${shift}: a view exactly when aligned`);
      const batch = concatRows([x]);
      assert.ok(ownsBuffer(batch), "the batch owns its memory, so the worker can take it over");
      assert.deepEqual(Array.from(batch.data as Float32Array), [1.5, -2]);
    }
    const own: HostTensor = { dtype: "float32", shape: [1, 2], data: new Float32Array([1, 2]) };
    assert.equal(concatRows([own]), own, "a tensor that owns its memory is not copied again");
  });

  it("returns binary outputs when the request asks for them, with the JSON length", () => {
    const outputs = new Map([["y", { dtype: "float32" as const, shape: [1], data: new Float32Array([0.25]) }]]);
    const enc = encodeV2Infer("m", "1", "id-1", [{ name: "y", binary: true }], outputs);
    const json = JSON.parse(enc.body.subarray(0, enc.headerLength).toString()) as {
      outputs: { parameters: { binary_data_size: number } }[];
      id: string;
    };
    assert.equal(json.id, "id-1");
    assert.equal(json.outputs[0]!.parameters.binary_data_size, 4);
    assert.equal(enc.body.readFloatLE(enc.headerLength), 0.25);
  });

  it("rejects a datatype the model does not take with a 400 naming both", () => {
    const body = Buffer.from(
      JSON.stringify({ inputs: [{ name: "x", shape: [1, 2], datatype: "INT32", data: [1, 2] }] }),
    );
    assert.throws(
      () => decodeV2Infer(body, undefined, "m", single),
      (err: unknown) =>
        err instanceof ServingError &&
        err.httpStatus === 400 &&
        /datatype is INT32, but model 'm' expects FP32/.test(err.message),
    );
  });
});
