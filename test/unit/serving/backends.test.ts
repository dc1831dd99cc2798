import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { restoreIsNullOrUndefined } from "../../../serving-image/src/backends/select.ts";

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
