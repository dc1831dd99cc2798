import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { DEFAULT_SERVING_IMAGE } from "../../operator/src/reconcile/desired-deployment.ts";

describe("the serving image default", function () {
  it("is the same in the operator and in the chart's values", function () {
    const values = parse(readFileSync(new URL("../../charts/maas-operator/values.yaml", import.meta.url), "utf8")) as {
      servingImage?: string;
    };
    assert.equal(values.servingImage, DEFAULT_SERVING_IMAGE);
  });
});
