/**
 * Finds the model inside the model directory the `fetch` init container filled.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { ModelFormat } from "../contract.ts";

export interface ModelLocation {
  /** `model.json` for TF.js models, the SavedModel directory otherwise. */
  readonly path: string;
  readonly kind: "tfjs" | "saved-model";
}

/**
 * Resolves `dir` (or a direct path to a model.json) to the model file: `model.json` first, then a
 * SavedModel (`saved_model.pb`), then the only `*.json` file in the directory. Throws a message that
 * lists what the directory holds when none fits.
 */
export async function locateModel(dir: string, format: ModelFormat | undefined): Promise<ModelLocation> {
  let info;
  try {
    info = await stat(dir);
  } catch {
    throw new Error(`Model path ${dir} does not exist; did the fetch init container run?`);
  }
  if (info.isFile()) {
    if (!dir.endsWith(".json")) throw new Error(`Model path ${dir} is a file but not a model.json`);
    return { path: dir, kind: "tfjs" };
  }
  const entries = await readdir(dir);
  if (format !== "tf-saved-model" && entries.includes("model.json"))
    return { path: path.join(dir, "model.json"), kind: "tfjs" };
  if (entries.includes("saved_model.pb")) return { path: dir, kind: "saved-model" };
  const jsons = entries.filter((e) => e.endsWith(".json"));
  if (format !== "tf-saved-model" && jsons.length === 1) return { path: path.join(dir, jsons[0]!), kind: "tfjs" };
  const listing =
    entries.length === 0
      ? "it is empty"
      : `it holds: ${entries.slice(0, 10).join(", ")}${entries.length > 10 ? ", …" : ""}`;
  throw new Error(`No model.json or saved_model.pb in ${dir} (${listing})`);
}
