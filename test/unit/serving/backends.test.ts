import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { defaultIntraOpThreads, restoreIsNullOrUndefined } from "../../../serving-image/src/backends/select.ts";

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

describe("defaultIntraOpThreads", function () {
  it("leaves one core to the HTTP thread when the environment does not choose", function () {
    const two: NodeJS.ProcessEnv = {};
    assert.equal(defaultIntraOpThreads(two, 2), "1");
    assert.equal(two["TF_NUM_INTRAOP_THREADS"], "1");
    const eight: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: " " };
    assert.equal(defaultIntraOpThreads(eight, 8), "7");
    assert.equal(eight["TF_NUM_INTRAOP_THREADS"], "7");
    assert.equal(defaultIntraOpThreads({}, 1), "1");
  });

  it("keeps a value the environment sets", function () {
    const env: NodeJS.ProcessEnv = { TF_NUM_INTRAOP_THREADS: "4" };
    assert.equal(defaultIntraOpThreads(env, 2), "4");
    assert.equal(env["TF_NUM_INTRAOP_THREADS"], "4");
  });
});
