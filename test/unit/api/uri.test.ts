import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { validateModelDeployment } from "../../../operator/src/api/index.ts";
import { parseModelUri } from "../../../serving-image/src/fetch/uri.ts";
import { manifest } from "./corpus.ts";

const examplesDir = join(import.meta.dirname, "../../../crds/examples");

// The API must never accept a model URI that the pod's fetch step then refuses: that is the
// "accepted, then fails silently" failure this schema exists to prevent.
const accepted: { uri: string; format?: string }[] = [
  { uri: "https://models.example.com/sentiment/3/model.json" },
  { uri: "http://10.0.0.7:8000/m/model.json" },
  { uri: "https://bucket.s3.amazonaws.com/m/model.json?X-Amz-Signature=abc&X-Amz-Expires=60" },
  { uri: "s3://acme-models/fraud/2024-06/model.json" },
  { uri: "s3://my.bucket-1/a/b/c/model.json", format: "tfjs-layers" },
  { uri: "pvc://models/recommender/5", format: "tf-saved-model" },
  { uri: "pvc://models" },
  { uri: "pvc://models/m/model.json" },
  { uri: "file:///srv/models/m/model.json" },
  { uri: "file:///srv/models/saved", format: "tf-saved-model" },
];

describe("model URIs", () => {
  for (const { uri, format } of accepted) {
    it(`accepts ${uri}${format ? ` (${format})` : ""}, which the fetch step can parse`, () => {
      const r = validateModelDeployment(manifest({ model: { uri, ...(format ? { format } : {}) } }));
      assert.deepEqual(r.errors, []);
      assert.doesNotThrow(() => parseModelUri(uri));
    });
  }

  for (const file of readdirSync(examplesDir).filter((f) => f.endsWith(".yaml"))) {
    it(`parses the uri of the example ${file} in the fetch step`, () => {
      const doc = parse(readFileSync(join(examplesDir, file), "utf8")) as { spec: { model: { uri: string } } };
      assert.doesNotThrow(() => parseModelUri(doc.spec.model.uri));
    });
  }
});
