/**
 * Reads a TF.js model (model.json + weight shards) from the local filesystem into ModelArtifacts, so
 * loading works through an IOHandler on every backend (file:// URLs need tfjs-node).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { io } from "@tensorflow/tfjs";

const bytesOfDtype: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  float16: 2,
  uint8: 1,
  uint16: 2,
  complex64: 8,
};

/** Bytes a weights manifest describes, or undefined when it holds strings (variable length). */
function expectedWeightBytes(specs: readonly io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const s of specs) {
    const dtype = s.quantization?.dtype ?? s.dtype;
    const per = bytesOfDtype[dtype];
    if (per === undefined) return undefined;
    total += s.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}

export interface ModelJson {
  readonly format?: string;
  readonly modelTopology?: unknown;
  readonly weightsManifest?: io.WeightsManifestConfig;
  readonly signature?: unknown;
  readonly [key: string]: unknown;
}

/**
 * Reads `modelJsonPath` and its shards (in manifest order, concatenated). Shard paths must stay inside
 * the model's directory; a missing shard or a size that disagrees with the manifest is an error that
 * names the file.
 */
export async function readModelArtifacts(
  tfio: typeof io,
  modelJsonPath: string,
): Promise<{ json: ModelJson; artifacts: io.ModelArtifacts }> {
  let json: ModelJson;
  try {
    json = JSON.parse(await readFile(modelJsonPath, "utf8")) as ModelJson;
  } catch (err) {
    throw new Error(`Cannot read ${modelJsonPath}: ${(err as Error).message}`, { cause: err });
  }
  if (json === null || typeof json !== "object" || json.modelTopology === undefined) {
    throw new Error(`${modelJsonPath} is not a TF.js model.json (no modelTopology)`);
  }
  const dir = path.dirname(modelJsonPath);
  const artifacts = await tfio.getModelArtifactsForJSON(json as io.ModelJSON, async (manifest) => {
    const specs: io.WeightsManifestEntry[] = [];
    const buffers: Buffer[] = [];
    for (const group of manifest) {
      for (const p of group.paths) {
        const file = path.resolve(dir, p);
        if (!file.startsWith(dir + path.sep))
          throw new Error(`Weight path ${p} in model.json leaves the model directory`);
        try {
          buffers.push(await readFile(file));
        } catch {
          throw new Error(`Weight shard ${p} listed in model.json is missing from ${dir}`);
        }
      }
      specs.push(...group.weights);
    }
    const all = Buffer.concat(buffers);
    const expected = expectedWeightBytes(specs);
    if (expected !== undefined && expected !== all.length) {
      throw new Error(`Weight shards hold ${all.length} bytes, but model.json's weightsManifest describes ${expected}`);
    }
    return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
  });
  return { json, artifacts };
}
