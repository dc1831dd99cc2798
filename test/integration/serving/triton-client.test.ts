// The v2 protocol as Triton's own Python HTTP client speaks it (JSON and binary tensor data), against
// the real server process. Needs `pip install 'tritonclient[http]'` (CI installs it).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { promisify } from "node:util";
import { assertClose, copyHumanModel, directModel, seededFloats, tempDir } from "./fixtures.ts";
import { startServing, tritonClient, type ServingProcess } from "./harness.ts";

const run = promisify(execFile);

describe("maas-serving with Triton's Python HTTP client (tritonclient[http])", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    try {
      await run("python3", ["-c", "import tritonclient.http, numpy"]);
    } catch (err) {
      throw new Error(
        `tritonclient[http] is not installed: run pip install 'tritonclient[http]' (${(err as Error).message})`,
        { cause: err },
      );
    }
    dir = await copyHumanModel("liveness", await tempDir("triton"));
    server = await startServing(dir, { MAAS_SERVED_NAME: "liveness" });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("sees the server live and ready, reads metadata, and gets the model's numbers in JSON and binary mode", async () => {
    const shape = [2, 32, 32, 3];
    const data = seededFloats(42, 2 * 32 * 32 * 3);
    const seen = await tritonClient(server.url, "liveness", { name: "conv2d_1_input", shape, data }, dir);
    assert.equal(seen["live"], true);
    assert.equal(seen["ready"], true);
    assert.equal(seen["model_ready"], true);
    assert.deepEqual((seen["server_metadata"] as { extensions: string[] }).extensions, ["binary_tensor_data"]);
    assert.deepEqual((seen["model_metadata"] as { inputs: unknown[] }).inputs, [
      { name: "conv2d_1_input", datatype: "FP32", shape: [-1, 32, 32, 3] },
    ]);
    const expected = (await (await directModel(dir)).predict({ conv2d_1_input: { data, shape } }))["activation_6"]!
      .data;
    for (const mode of ["json", "binary"] as const) {
      const r = seen[mode] as {
        id: string;
        shape: number[];
        dtype: string;
        data: number[];
        binary_in_response: boolean;
      };
      assert.equal(r.id, `triton-${mode}`);
      assert.deepEqual(r.shape, [2, 2]);
      assert.equal(r.dtype, "float32");
      assert.equal(r.binary_in_response, mode === "binary", `${mode} mode response format`);
      assertClose(r.data, expected, 1e-5, mode);
    }
    assert.deepEqual(seen["unknown_model_error"], {
      status: "404",
      message: "Request for unknown model: 'no-such-model' is not found",
    });
  });
});
