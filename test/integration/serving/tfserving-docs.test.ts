// The request and response examples of the TensorFlow Serving REST API documentation
// (tensorflow_serving/g3doc/api_rest.md), replayed against the real server process.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { saveHalfPlusThree, saveTagSignalSensor, tempDir } from "./fixtures.ts";
import { getJson, postJson, rawRequest, startServing, type ServingProcess } from "./harness.ts";

describe("maas-serving against the TF Serving REST documentation's examples", function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  let halfPlusThree: ServingProcess;
  let tagged: ServingProcess;
  before(async () => {
    dirs.push(await saveHalfPlusThree(await tempDir("docs-hp3")), await saveTagSignalSensor(await tempDir("docs-tss")));
    // The docs serve half_plus_three as version 123.
    [halfPlusThree, tagged] = await Promise.all([
      startServing(dirs[0]!, { MAAS_SERVED_NAME: "half_plus_three", MAAS_MODEL_VERSION: "123" }),
      startServing(dirs[1]!, { MAAS_SERVED_NAME: "tagged" }),
    ]);
    await Promise.all([halfPlusThree.waitReady(), tagged.waitReady()]);
  });
  after(async () => {
    await Promise.all([halfPlusThree?.stop(), tagged?.stop()]);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("answers `curl http://localhost:8501/v1/models/half_plus_three` with the documented status body", async () => {
    const res = await getJson(`${halfPlusThree.url}/v1/models/half_plus_three`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, {
      model_version_status: [{ version: "123", state: "AVAILABLE", status: { error_code: "OK", error_message: "" } }],
    });
  });

  it('answers the documented predict {"instances": [1.0,2.0,5.0]} with {"predictions": [3.5, 4.0, 5.5]}', async () => {
    const res = await rawRequest(`${halfPlusThree.url}/v1/models/half_plus_three:predict`, {
      method: "POST",
      body: '{"instances": [1.0,2.0,5.0]}',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), { predictions: [3.5, 4.0, 5.5] });
  });

  it("answers the documented predict on an unknown model with 404 and the documented error", async () => {
    const res = await rawRequest(`${halfPlusThree.url}/v1/models/half:predict`, {
      method: "POST",
      body: '{"instances": [1.0,5.0]}',
    });
    assert.equal(res.status, 404);
    assert.match(String(res.headers["content-type"]), /application\/json/);
    assert.deepEqual(JSON.parse(res.body.toString()), { error: "Servable not found for request: Latest(half)" });
  });

  it("answers the documented `regress` call with 501 naming :predict, since TF.js models have no regress signature", async () => {
    const res = await postJson(`${halfPlusThree.url}/v1/models/half_plus_three:regress`, {
      signature_name: "tensorflow/serving/regress",
      examples: [{ x: 1.0 }, { x: 2.0 }],
    });
    assert.equal(res.status, 501);
    assert.match(String(res.json["error"]), /:predict/);
  });

  // The docs' row example has a typo (`[3, 4, 1, 2, 5]]`); it is sent here with the bracket fixed.
  const rowExample = {
    instances: [
      {
        tag: "foo",
        signal: [1, 2, 3, 4, 5],
        sensor: [
          [1, 2],
          [3, 4],
        ],
      },
      {
        tag: "bar",
        signal: [3, 4, 1, 2, 5],
        sensor: [
          [4, 5],
          [6, 8],
        ],
      },
    ],
  };
  const columnarExample = {
    inputs: {
      tag: ["foo", "bar"],
      signal: [
        [1, 2, 3, 4, 5],
        [3, 4, 1, 2, 5],
      ],
      sensor: [
        [
          [1, 2],
          [3, 4],
        ],
        [
          [4, 5],
          [6, 8],
        ],
      ],
    },
  };

  it("answers the documented row example (three named inputs) with a list of objects, one per instance", async () => {
    const res = await postJson(`${tagged.url}/v1/models/tagged:predict`, rowExample);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json, {
      predictions: [
        { tag_out: "foo", signal_sum: 15, sensor_max: 4 },
        { tag_out: "bar", signal_sum: 15, sensor_max: 8 },
      ],
    });
  });

  it("answers the documented columnar example with an object of named output tensors", async () => {
    const res = await postJson(`${tagged.url}/v1/models/tagged:predict`, columnarExample);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.deepEqual(res.json, { outputs: { tag_out: ["foo", "bar"], signal_sum: [15, 15], sensor_max: [4, 8] } });
  });

  it("rejects the documented row example as printed (its extra bracket) with a 400 naming the JSON error", async () => {
    const asPrinted = `{"instances": [{"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
      {"tag": "bar", "signal": [3, 4, 1, 2, 5]], "sensor": [[4, 5], [6, 8]]}]}`;
    const res = await rawRequest(`${tagged.url}/v1/models/tagged:predict`, { method: "POST", body: asPrinted });
    assert.equal(res.status, 400);
    assert.match((JSON.parse(res.body.toString()) as { error: string }).error, /^Malformed JSON in request body/);
  });
});
