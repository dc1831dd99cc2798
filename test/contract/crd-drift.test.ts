import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GENERATED_HEADER, crdYaml } from "../../operator/src/api/index.ts";
import { generatedCrdFiles } from "../../scripts/generate-crds.ts";
import { assertUpToDate } from "./generated-file.ts";

const root = join(import.meta.dirname, "../..");

describe("generated CRD files", () => {
  it("are written to crds/ and to the chart's crds/", () => {
    assert.deepEqual(generatedCrdFiles, [
      "crds/maas.dev_modeldeployments.yaml",
      "charts/maas-operator/crds/maas.dev_modeldeployments.yaml",
    ]);
  });

  for (const rel of generatedCrdFiles) {
    it(`${rel} equals what operator/src/api generates (run npm run generate after changing the API)`, () => {
      const committed = readFileSync(join(root, rel), "utf8");
      assert.equal(committed.split("\n")[0], GENERATED_HEADER);
      const generated = crdYaml();
      assertUpToDate(rel, committed, generated);
    });
  }
});
