import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { GENERATED_HEADER, crdYaml } from "../../operator/src/api/index.ts";
import { generatedCrdFiles } from "../../scripts/generate-crds.ts";

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
      if (committed !== generated) {
        const a = committed.split("\n");
        const b = generated.split("\n");
        const i = a.findIndex((line, n) => line !== b[n]);
        const at = i === -1 ? a.length : i;
        assert.fail(
          `${rel} is stale (run npm run generate); first difference at line ${at + 1}:\n` +
            `  committed: ${a[at] ?? "<end of file>"}\n  generated: ${b[at] ?? "<end of file>"}`,
        );
      }
    });
  }
});
