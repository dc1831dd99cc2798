import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { defaultTensorflowThreads, restoreIsNullOrUndefined } from "../../../serving-image/src/backends/select.ts";

describe("restoreIsNullOrUndefined", function () {
  it("gives CommonJS code (as tfjs-node is) a working util.isNullOrUndefined on Node 24", function () {
    restoreIsNullOrUndefined();
    const util = createRequire(import.meta.url)("node:util") as { isNullOrUndefined: (v: unknown) => boolean };
    assert.equal(util.isNullOrUndefined(null), true);
    assert.equal(util.isNullOrUndefined(undefined), true);
    assert.equal(util.isNullOrUndefined(0), false);
    assert.equal(util.isNullOrUndefined(""), false);
  });
});

describe("defaultTensorflowThreads", function () {
  it("leaves one core to the HTTP thread, in both of TensorFlow's pools, when the environment does not choose", function () {
    const two: NodeJS.ProcessEnv = {};
    assert.deepEqual(defaultTensorflowThreads(two, 2), { intraOp: "1", interOp: "1" });
    assert.equal(two["TF_NUM_INTRAOP_THREADS"], "1");
    assert.equal(two["TF_NUM_INTEROP_THREADS"], "1");
    const eight: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: " " };
    assert.deepEqual(defaultTensorflowThreads(eight, 8), { intraOp: "7", interOp: "7" });
    assert.equal(eight["TF_NUM_INTRAOP_THREADS"], "7");
    assert.deepEqual(defaultTensorflowThreads({}, 1), { intraOp: "1", interOp: "1" });
  });

  it("keeps values the environment sets, each on its own", function () {
    const env: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: "4" };
    assert.deepEqual(defaultTensorflowThreads(env, 2), { intraOp: "4", interOp: "1" });
    assert.equal(env["TF_NUM_INTRAOP_THREADS"], "4");
    const both: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: "0", TF_NUM_INTEROP_THREADS: "3" };
    assert.deepEqual(defaultTensorflowThreads(both, 2), { intraOp: "0", interOp: "3" });
  });
});
