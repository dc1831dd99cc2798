/**
 * Pure reading of a TF.js model.json: which weight files it needs. Graph and layers models share the
 * `weightsManifest: [{ paths: [...], weights: [...] }]` layout; paths are relative to model.json.
 */
import { FetchError } from "./errors.ts";
import { checkRelativePath } from "./uri.ts";

/** At most this many shard files per model: a bound against a hostile model.json, far above real models. */
export const maxWeightFiles = 10_000;

/**
 * Returns the distinct weight file paths listed in a model.json's weightsManifest, in manifest order,
 * each checked to stay inside the model directory. Throws a FetchError naming the defect otherwise.
 */
export function weightPaths(modelJson: string, where = "model.json"): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(modelJson);
  } catch (err) {
    throw new FetchError(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(doc)) throw new FetchError(`${where} must be a JSON object`);
  if (!("modelTopology" in doc) && !("weightsManifest" in doc)) {
    throw new FetchError(`${where} is not a TF.js model (it has neither modelTopology nor weightsManifest)`);
  }
  const manifest = doc["weightsManifest"];
  if (manifest === undefined) return [];
  if (!Array.isArray(manifest)) throw new FetchError(`${where}: weightsManifest must be an array`);
  const seen = new Set<string>();
  const out: string[] = [];
  manifest.forEach((group: unknown, i) => {
    if (!isRecord(group) || !Array.isArray(group["paths"])) {
      throw new FetchError(`${where}: weightsManifest[${i}].paths must be an array of strings`);
    }
    (group["paths"] as unknown[]).forEach((p, j) => {
      if (typeof p !== "string") throw new FetchError(`${where}: weightsManifest[${i}].paths[${j}] must be a string`);
      checkRelativePath(p, `${where}: weightsManifest[${i}].paths[${j}]`);
      if (p === "model.json")
        throw new FetchError(`${where}: weightsManifest[${i}].paths[${j}] must not be model.json`);
      if (!seen.has(p)) {
        seen.add(p);
        out.push(p);
      }
    });
  });
  if (out.length > maxWeightFiles) {
    throw new FetchError(`${where} lists ${out.length} weight files; at most ${maxWeightFiles} are accepted`);
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
