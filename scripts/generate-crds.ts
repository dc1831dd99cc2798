/**
 * Writes the ModelDeployment CRD generated from operator/src/api into crds/ and into the Helm chart's
 * crds/ directory. Run with `npm run generate`; test/contract/crd-drift.test.ts fails when the committed
 * files differ from what this writes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crdYaml } from "../operator/src/api/index.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Paths (relative to the repository root) of every generated CRD file. */
export const generatedCrdFiles = [
  "crds/maas.dev_modeldeployments.yaml",
  "charts/maas-operator/crds/maas.dev_modeldeployments.yaml",
];

function main(): void {
  const yaml = crdYaml();
  for (const rel of generatedCrdFiles) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, yaml);
    console.log(`wrote ${rel} (${Buffer.byteLength(yaml)} bytes)`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
