// A table of bad requests against the real server process: each gets the right status and a clear
// `{"error": …}` body, and afterwards the server still answers good requests with unchanged results.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { saveLayersModel, tempDir } from "./fixtures.ts";
import { metricValue, rawRequest, startServing, type ServingProcess } from "./harness.ts";

interface BadCase {
  readonly name: string;
  readonly method?: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer | (() => Buffer);
  readonly status: number;
  readonly error: RegExp | string;
}

const good = { instances: [{ features: [0.1, 0.2, 0.3, 0.4], extra: [1, -1] }] };
const predict = "/v1/models/model:predict";
const infer = "/v2/models/model/infer";
const v2Input = (over: Record<string, unknown>): unknown => ({
  name: "features",
  shape: [1, 4],
  datatype: "FP32",
  data: [1, 2, 3, 4],
  ...over,
});
const v2Body = (inputs: unknown[], extra: Record<string, unknown> = {}): string => JSON.stringify({ inputs, ...extra });
const extraInput = { name: "extra", shape: [1, 2], datatype: "FP32", data: [0, 0] };

/** A binary v2 request: JSON header (length announced separately) followed by `binary`. */
function binaryRequest(
  json: unknown,
  binary: Buffer,
  announced?: number,
): { headers: Record<string, string>; body: Buffer } {
  const head = Buffer.from(JSON.stringify(json));
  return {
    headers: { "inference-header-content-length": String(announced ?? head.length) },
    body: Buffer.concat([head, binary]),
  };
}
const f32 = (values: number[]): Buffer => Buffer.from(new Float32Array(values).buffer);
const binInputs = [
  { name: "features", shape: [1, 4], datatype: "FP32", parameters: { binary_data_size: 16 } },
  { name: "extra", shape: [1, 2], datatype: "FP32", parameters: { binary_data_size: 8 } },
];
const lyingHeader = binaryRequest({ inputs: binInputs }, f32([1, 2, 3, 4, 5, 6]), 5000);
const sizeTooBig = binaryRequest(
  { inputs: [{ ...binInputs[0], parameters: { binary_data_size: 64 } }, binInputs[1]] },
  f32([1, 2, 3, 4, 5, 6]),
);
const sizeVsShape = binaryRequest(
  {
    inputs: [
      { ...binInputs[0], parameters: { binary_data_size: 12 } },
      { ...binInputs[1], parameters: { binary_data_size: 12 } },
    ],
  },
  f32([1, 2, 3, 4, 5, 6]),
);
const trailing = binaryRequest({ inputs: binInputs }, f32([1, 2, 3, 4, 5, 6, 7, 8]));
const headerCutsJson = binaryRequest({ inputs: binInputs }, f32([1, 2, 3, 4, 5, 6]), 10);

const cases: BadCase[] = [
  {
    name: "malformed JSON",
    path: predict,
    body: '{"instances": [1, 2',
    status: 400,
    error: /^Malformed JSON in request body/,
  },
  { name: "an empty body", path: predict, body: "", status: 400, error: /empty/ },
  {
    name: "a JSON list instead of an object",
    path: predict,
    body: "[1,2,3]",
    status: 400,
    error: /must be a JSON object/,
  },
  {
    name: "both instances and inputs",
    path: predict,
    body: JSON.stringify({ ...good, inputs: {} }),
    status: 400,
    error: "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
  },
  {
    name: "neither instances nor inputs",
    path: predict,
    body: "{}",
    status: 400,
    error: "Missing 'inputs' or 'instances' key",
  },
  {
    name: "instances that is not a list",
    path: predict,
    body: '{"instances": 3}',
    status: 400,
    error: /'instances' must be a list/,
  },
  { name: "an empty instances list", path: predict, body: '{"instances": []}', status: 400, error: /empty list/ },
  {
    name: "a missing named input",
    path: predict,
    body: JSON.stringify({ instances: [{ features: [1, 2, 3, 4] }] }),
    status: 400,
    error: /Missing input 'extra'/,
  },
  {
    name: "an unknown named input",
    path: predict,
    body: JSON.stringify({ instances: [{ ...good.instances[0], bogus: 1 }] }),
    status: 400,
    error: /Unknown input 'bogus'/,
  },
  {
    name: "a wrong shape (3 features instead of 4)",
    path: predict,
    body: JSON.stringify({ instances: [{ features: [1, 2, 3], extra: [1, 1] }] }),
    status: 400,
    error: /shape \[1,3\], but the model expects \[-1,4\]/,
  },
  {
    name: "a wrong rank",
    path: predict,
    body: JSON.stringify({ inputs: { features: [1, 2, 3, 4], extra: [[1, 1]] } }),
    status: 400,
    error: /Input 'features' in 'inputs' has shape \[4\]/,
  },
  {
    name: "a ragged list",
    path: predict,
    body: JSON.stringify({
      inputs: {
        features: [
          [1, 2, 3, 4],
          [1, 2],
        ],
        extra: [
          [1, 1],
          [1, 1],
        ],
      },
    }),
    status: 400,
    error: /Ragged list in 'inputs.features'.*\[1\] has 2 entries, expected 4/,
  },
  {
    name: "a ragged list of lists and numbers",
    path: predict,
    body: JSON.stringify({
      inputs: {
        features: [[1, 2, 3, 4], 5],
        extra: [
          [1, 1],
          [1, 1],
        ],
      },
    }),
    status: 400,
    error: /Ragged list/,
  },
  {
    name: "a string where a float32 goes",
    path: predict,
    body: JSON.stringify({ instances: [{ features: [1, "two", 3, 4], extra: [1, 1] }] }),
    status: 400,
    error: /expected a number for float32, got string "two"/,
  },
  {
    name: "null where a float32 goes",
    path: predict,
    body: JSON.stringify({ instances: [{ features: [1, null, 3, 4], extra: [1, 1] }] }),
    status: 400,
    error: /got null/,
  },
  {
    name: "a boolean where a float32 goes",
    path: predict,
    body: JSON.stringify({ instances: [{ features: [true, 2, 3, 4], extra: [1, 1] }] }),
    status: 400,
    error: /got boolean true/,
  },
  {
    name: "mixed row formats",
    path: predict,
    body: JSON.stringify({ instances: [good.instances[0], [1, 2, 3, 4]] }),
    status: 400,
    error: /Instance 1 is not an object/,
  },
  {
    name: "an unknown signature_name",
    path: predict,
    body: JSON.stringify({ ...good, signature_name: "classify_objects" }),
    status: 400,
    error: 'Serving signature name: "classify_objects" not found in signature def',
  },
  {
    name: "a signature_name that is not a string",
    path: predict,
    body: JSON.stringify({ ...good, signature_name: 100 }),
    status: 400,
    error: "'signature_name' must be a string",
  },
  {
    name: "v1 predict on an unknown model",
    path: "/v1/models/nope:predict",
    body: JSON.stringify(good),
    status: 404,
    error: "Servable not found for request: Latest(nope)",
  },
  {
    name: "v1 predict on an unknown version",
    path: "/v1/models/model/versions/7:predict",
    body: JSON.stringify(good),
    status: 404,
    error: "Servable not found for request: Specific(model, 7)",
  },
  {
    name: "v1 predict on an unknown label",
    path: "/v1/models/model/labels/canary:predict",
    body: JSON.stringify(good),
    status: 400,
    error: "Unrecognized servable version label: canary",
  },
  {
    name: "v1 status of an unknown model",
    method: "GET",
    path: "/v1/models/nope",
    status: 404,
    error: "Could not find any versions of model nope",
  },
  {
    name: "v1 status of an unknown version",
    method: "GET",
    path: "/v1/models/model/versions/9",
    status: 404,
    error: "Could not find version 9 of model model",
  },
  {
    name: "a version that is not digits",
    method: "GET",
    path: "/v1/models/model/versions/abc",
    status: 400,
    error: "Malformed request: GET /v1/models/model/versions/abc",
  },
  {
    name: "a version and a label together",
    method: "GET",
    path: "/v1/models/model/versions/1/labels/x",
    status: 400,
    error: /^Malformed request: GET/,
  },
  {
    name: "GET /v1/models without a name",
    method: "GET",
    path: "/v1/models",
    status: 400,
    error: "Missing model name in request.",
  },
  {
    name: "PUT on a predict route",
    method: "PUT",
    path: predict,
    body: JSON.stringify(good),
    status: 400,
    error: "Malformed request: PUT /v1/models/model:predict",
  },
  {
    name: "v2 infer on an unknown model",
    path: "/v2/models/nope/infer",
    body: v2Body([v2Input({}), extraInput]),
    status: 404,
    error: "Request for unknown model: 'nope' is not found",
  },
  {
    name: "v2 infer on an unknown version",
    path: "/v2/models/model/versions/3/infer",
    body: v2Body([v2Input({}), extraInput]),
    status: 404,
    error: "Request for unknown model: 'model' version 3 is not found",
  },
  {
    name: "a v2 datatype the model does not take",
    path: infer,
    body: v2Body([v2Input({ datatype: "FP64" }), extraInput]),
    status: 400,
    error: "Input 'features': datatype is FP64, but model 'model' expects FP32",
  },
  {
    name: "an unknown v2 datatype",
    path: infer,
    body: v2Body([v2Input({ datatype: "FLOAT" }), extraInput]),
    status: 400,
    error: /unknown datatype "FLOAT"/,
  },
  {
    name: "a v2 shape that claims far more than the data holds (nothing is allocated for the claim)",
    path: infer,
    body: v2Body([v2Input({ shape: [100_000_000, 4] }), extraInput]),
    status: 400,
    error: "Input 'features': 'data' has 4 elements, but shape [100000000,4] needs 400000000",
  },
  {
    name: "v2 data that does not fill the shape",
    path: infer,
    body: v2Body([v2Input({ data: [1, 2, 3] }), extraInput]),
    status: 400,
    error: "Input 'features': 'data' has 3 elements, but shape [1,4] needs 4",
  },
  {
    name: "a v2 shape the model does not take",
    path: infer,
    body: v2Body([v2Input({ shape: [1, 5], data: [1, 2, 3, 4, 5] }), extraInput]),
    status: 400,
    error: /shape \[1,5\] does not match the model's \[-1,4\]/,
  },
  {
    name: "a negative v2 dimension",
    path: infer,
    body: v2Body([v2Input({ shape: [-1, 4] }), extraInput]),
    status: 400,
    error: /shape\[0\] must be a non-negative integer/,
  },
  {
    name: "an unknown v2 input",
    path: infer,
    body: v2Body([v2Input({}), extraInput, { ...extraInput, name: "bogus" }]),
    status: 400,
    error: /Unexpected inference input 'bogus'/,
  },
  { name: "a missing v2 input", path: infer, body: v2Body([v2Input({})]), status: 400, error: /Missing input 'extra'/ },
  {
    name: "an unknown requested v2 output",
    path: infer,
    body: v2Body([v2Input({}), extraInput], { outputs: [{ name: "logits" }] }),
    status: 400,
    error: /Unexpected inference output 'logits'/,
  },
  { name: "an empty v2 inputs list", path: infer, body: v2Body([]), status: 400, error: /non-empty 'inputs' list/ },
  {
    name: "a binary header that claims more bytes than the body has",
    path: infer,
    headers: lyingHeader.headers,
    body: lyingHeader.body,
    status: 400,
    error: /Inference-Header-Content-Length is 5000, but the body has only \d+ bytes/,
  },
  {
    name: "a binary header that cuts the JSON short",
    path: infer,
    headers: headerCutsJson.headers,
    body: headerCutsJson.body,
    status: 400,
    error: /^Malformed JSON in request body/,
  },
  {
    name: "a binary_data_size past the end of the body",
    path: infer,
    headers: sizeTooBig.headers,
    body: sizeTooBig.body,
    status: 400,
    error: /binary_data_size 64 runs past the end of the body/,
  },
  {
    name: "a binary_data_size that disagrees with the shape",
    path: infer,
    headers: sizeVsShape.headers,
    body: sizeVsShape.body,
    status: 400,
    error: /binary_data_size is 12 bytes, but shape \[1,4\] of FP32 needs 16/,
  },
  {
    name: "binary bytes no input accounts for",
    path: infer,
    headers: trailing.headers,
    body: trailing.body,
    status: 400,
    error: /8 bytes follow the JSON header/,
  },
  {
    name: "binary_data_size without the header",
    path: infer,
    body: JSON.stringify({ inputs: binInputs }),
    status: 400,
    error: /no Inference-Header-Content-Length header/,
  },
  {
    name: "a non-numeric Inference-Header-Content-Length",
    path: infer,
    headers: { "inference-header-content-length": "lots" },
    body: "{}",
    status: 400,
    error: /must be a non-negative integer, got "lots"/,
  },
  {
    name: "a compressed body",
    path: predict,
    headers: { "content-encoding": "gzip" },
    body: JSON.stringify(good),
    status: 415,
    error: /Content-Encoding gzip is not supported/,
  },
  {
    name: "a 100 MB body (declared length)",
    path: predict,
    body: () => Buffer.alloc(100 * 1024 * 1024, 0x20),
    status: 413,
    error: /Request body of 104857600 bytes exceeds the limit of 67108864 bytes/,
  },
  { name: "an unknown path", method: "GET", path: "/predict", status: 404, error: /Not found: GET \/predict/ },
  {
    name: "a v1 model name with a broken percent-escape",
    method: "GET",
    path: "/v1/models/%E0%A4%A",
    status: 400,
    error: /Malformed request: \/v1\/models\/%E0%A4%A has an invalid percent-encoding/,
  },
  {
    name: "a v2 model name with a broken percent-escape",
    method: "GET",
    path: "/v2/models/%E0%A4%A/ready",
    status: 400,
    error: /has an invalid percent-encoding/,
  },
  { name: "GET on the v2 infer route", method: "GET", path: infer, status: 404, error: /Not found: GET/ },
];

describe("maas-serving with bad requests", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ServingProcess;
  let before1: string;
  before(async () => {
    dir = await saveLayersModel(await tempDir("bad"));
    server = await startServing(dir, { MAAS_BODY_TIMEOUT_MS: "1500" });
    await server.waitReady();
    const res = await rawRequest(`${server.url}${predict}`, { method: "POST", body: JSON.stringify(good) });
    assert.equal(res.status, 200);
    before1 = res.body.toString();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`has at least 30 cases in its table (${cases.length})`, () => {
    assert.ok(cases.length >= 30);
  });

  for (const c of cases) {
    it(`answers ${c.name} with ${c.status} and a clear error`, async () => {
      const body = typeof c.body === "function" ? c.body() : c.body;
      const res = await rawRequest(`${server.url}${c.path}`, {
        method: c.method ?? "POST",
        headers: c.headers ?? {},
        body,
      });
      const text = res.body.toString();
      assert.equal(res.status, c.status, text);
      assert.match(String(res.headers["content-type"]), /application\/json/);
      const parsed = JSON.parse(text) as { error?: unknown };
      assert.deepEqual(Object.keys(parsed), ["error"]);
      if (typeof c.error === "string") assert.equal(parsed.error, c.error);
      else assert.match(String(parsed.error), c.error);
    });
  }

  it("answers a 100 MB chunked body (no declared length) with 413 without buffering it", async () => {
    const status = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}${predict}`,
        { method: "POST", headers: { "transfer-encoding": "chunked" } },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => {
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on("error", reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const write = (): void => {
        while (sent < 100) {
          sent++;
          if (!req.write(chunk)) {
            req.once("drain", write);
            return;
          }
        }
        req.end();
      };
      write();
    });
    assert.equal(status.status, 413);
    assert.match(status.body, /exceeds the limit of 67108864 bytes/);
  });

  it("answers a client that never finishes its body with 408 and closes the connection", async () => {
    const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    const closed = new Promise<void>((resolve) =>
      socket.on("close", () => {
        resolve();
      }),
    );
    socket.write(
      `POST ${predict} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"instances": [`,
    );
    await closed;
    assert.match(received, /^HTTP\/1\.1 408/);
    assert.match(received, /\r\nconnection: close\r\n/i);
    assert.match(received, /Request body not received within 1500 ms \(got 15 of 1000 bytes\)/);
  });

  it("still answers the good request with byte-identical results after all of the above", async () => {
    const res = await rawRequest(`${server.url}${predict}`, { method: "POST", body: JSON.stringify(good) });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), before1);
    assert.equal(server.child.exitCode, null);
    const bad = await metricValue(server.metricsUrl, "maas_requests_total", { protocol: "v1", code: "400" });
    assert.ok(bad !== undefined && bad >= 20, `v1 400s counted: ${bad}`);
  });
});
