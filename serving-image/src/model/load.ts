/**
 * Loads a TF.js graph or layers model (or a SavedModel on tfjs-node) and wraps it in one interface:
 * its signature (names, shapes with -1, dtypes) and a `run` that takes and gives host tensors.
 */
import type * as tfjs from "@tensorflow/tfjs";
import type { ModelFormat } from "../contract.ts";
import {
  DTypes,
  allocateData,
  sizeOfShape,
  type DType,
  type HostTensor,
  type ModelSignature,
  type TensorSpec,
} from "../protocol/tensor.ts";
import { readModelArtifacts, type ModelJson } from "./artifacts.ts";
import type { ModelLocation } from "./locate.ts";

type Tf = typeof tfjs;

export interface LoadedModel {
  /** `tensorflowjs_graph`, `tensorflowjs_layers` or `tensorflow_savedmodel`. */
  readonly platform: string;
  readonly signature: ModelSignature;
  /** Whether requests may be concatenated along the first dimension (every input and output has dim 0 = -1). */
  readonly batchable: boolean;
  /** Runs the model on `inputs` (keyed by input name); returns every output keyed by output name. */
  run(inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>>;
  dispose(): void;
}

const dtypeOfTf: Record<string, DType> = {
  DT_FLOAT: "float32",
  DT_HALF: "float32",
  DT_DOUBLE: "float32",
  DT_INT32: "int32",
  DT_INT64: "int32",
  DT_INT16: "int32",
  DT_INT8: "int32",
  DT_UINT8: "int32",
  DT_UINT16: "int32",
  DT_BOOL: "bool",
  DT_STRING: "string",
};

function toDType(d: string | undefined, where: string): DType {
  if (d === undefined) return "float32";
  if ((DTypes as readonly string[]).includes(d)) return d as DType;
  const mapped = dtypeOfTf[d];
  if (mapped === undefined) throw new Error(`${where} has dtype ${d}, which maas cannot serve`);
  return mapped;
}

function normShape(shape: readonly (number | null | undefined)[] | undefined): number[] | null {
  if (shape === undefined) return null;
  return shape.map((d) => (d === null || d === undefined || d < 0 ? -1 : d));
}

/**
 * A SavedModel signature's shape as tfjs-node reports it. Its declarations say `number[]`, but
 * `getMetaGraphsFromSavedModel` hands over the protobuf `TensorShapeProto.Dim` messages themselves
 * (tfjs-node 4.22, saved_model.ts: `getTensorShape().getDimList()`), whose `getSize()` is the size
 * (-1 when unknown; an int64, so possibly a string). Plain numbers are taken as they are.
 */
export function savedModelShape(dims: readonly unknown[], where: string): number[] {
  return dims.map((d, i) => {
    const size: unknown =
      typeof d === "object" && d !== null && typeof (d as { getSize?: unknown }).getSize === "function"
        ? (d as { getSize: () => unknown }).getSize()
        : d;
    if (size === null || size === undefined) return -1;
    const n = typeof size === "string" && size.trim() !== "" ? Number(size) : size;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      throw new Error(
        `SavedModel signature tensor ${where} has dimension ${i} of unknown form (${JSON.stringify(size) ?? typeof size})`,
      );
    }
    return n < 0 ? -1 : n;
  });
}

interface SignatureTensor {
  name?: string;
  dtype?: string;
  tensorShape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
}

function specsFromSignature(map: Record<string, SignatureTensor> | undefined): TensorSpec[] | undefined {
  if (map === undefined) return undefined;
  return Object.entries(map).map(([key, t]) => ({
    name: key,
    tensorName: t.name ?? key,
    dtype: toDType(t.dtype, `Signature tensor ${key}`),
    shape:
      t.tensorShape === undefined || t.tensorShape.unknownRank === true
        ? null
        : (t.tensorShape.dim ?? []).map((d) => Number(d.size ?? -1)),
  }));
}

function toTensor(tf: Tf, t: HostTensor): tfjs.Tensor {
  return tf.tensor(t.data, [...t.shape], t.dtype);
}

async function fromTensor(t: tfjs.Tensor): Promise<HostTensor> {
  const dtype = toDType(t.dtype, "Output");
  const data = await t.data();
  if (dtype === "string") {
    const strings = (data as unknown as (string | Uint8Array)[]).map((v) =>
      typeof v === "string" ? v : Buffer.from(v).toString("utf8"),
    );
    return { dtype, shape: t.shape, data: strings };
  }
  // data() may return a view into backend memory; copy so the result can be transferred and kept.
  const copy = allocateData(dtype, data.length) as Float32Array | Int32Array | Uint8Array;
  copy.set(data);
  return { dtype, shape: t.shape, data: copy };
}

/** Fills unknown output shapes and decides batchability by running zeros at batch 1 and 2. */
async function warmUp(
  base: Omit<LoadedModel, "batchable">,
): Promise<{ signature: ModelSignature; batchable: boolean; warnings: string[] }> {
  const warnings: string[] = [];
  const sig = base.signature;
  if (sig.inputs.some((s) => s.shape === null)) {
    warnings.push("An input has unknown rank: skipped warm-up and disabled batching");
    return { signature: sig, batchable: false, warnings };
  }
  const guessed = sig.inputs.some((s) => s.shape!.slice(1).includes(-1));
  const inputsBatchable = sig.inputs.every((s) => s.shape![0] === -1);
  const zeros = (batch: number): Map<string, HostTensor> =>
    new Map(
      sig.inputs.map((s) => {
        // Unknown inner dims get a plausible size; a model that cannot take it only loses its warm-up.
        const shape = s.shape!.map((d, i) => (d !== -1 ? d : i === 0 ? batch : 16));
        return [s.name, { dtype: s.dtype, shape, data: allocateData(s.dtype, sizeOfShape(shape)) }];
      }),
    );
  let one: Map<string, HostTensor>;
  try {
    one = await base.run(zeros(1));
  } catch (err) {
    if (!guessed) throw new Error(`Warm-up inference failed: ${(err as Error).message}`, { cause: err });
    warnings.push(`Warm-up with guessed input sizes failed (${(err as Error).message}); batching disabled`);
    return { signature: sig, batchable: false, warnings };
  }
  let batchable = inputsBatchable && sig.outputs.every((s) => s.shape === null || s.shape[0] === -1);
  if (batchable) {
    const two = await base.run(zeros(2));
    batchable = sig.outputs.every((s) => one.get(s.name)?.shape[0] === 1 && two.get(s.name)?.shape[0] === 2);
  }
  const outputs = sig.outputs.map((s) => {
    if (s.shape !== null) return s;
    const seen = one.get(s.name)?.shape;
    if (seen === undefined) return s;
    return { ...s, shape: batchable ? [-1, ...seen.slice(1)] : [...seen] };
  });
  return { signature: { inputs: sig.inputs, outputs }, batchable, warnings };
}

async function loadGraph(
  tf: Tf,
  json: ModelJson,
  artifacts: tfjs.io.ModelArtifacts,
): Promise<Omit<LoadedModel, "batchable">> {
  const model = await tf.loadGraphModel(tf.io.fromMemory(artifacts));
  const signature = json.signature as
    { inputs?: Record<string, SignatureTensor>; outputs?: Record<string, SignatureTensor> } | undefined;
  const inputNodes = model.inputNodes;
  const outputNodes = model.outputNodes;
  const inputs =
    specsFromSignature(signature?.inputs)?.filter((s) => inputNodes.includes(s.name)) ??
    model.inputs.map((i) => ({
      name: i.name,
      tensorName: i.name,
      dtype: toDType(i.dtype, `Input ${i.name}`),
      shape: normShape(i.shape),
    }));
  const sigOutputs = specsFromSignature(signature?.outputs);
  const outputs = outputNodes.map((name, i) => {
    const fromSig = sigOutputs?.find((s) => s.name === name);
    if (fromSig !== undefined) return fromSig;
    const info = model.outputs[i];
    return {
      name,
      tensorName: info?.name ?? name,
      dtype: toDType(info?.dtype, `Output ${name}`),
      shape: normShape(info?.shape),
    };
  });
  let useAsync = false;
  const run = async (host: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> => {
    const feed: tfjs.NamedTensorMap = {};
    for (const [name, t] of host) feed[name] = toTensor(tf, t);
    try {
      let result: tfjs.Tensor | tfjs.Tensor[];
      if (useAsync) {
        result = await model.executeAsync(feed, outputNodes);
      } else {
        try {
          result = model.execute(feed, outputNodes);
        } catch (err) {
          // Models with control flow must run asynchronously; switch once, for good.
          if (!/executeAsync/.test((err as Error).message)) throw err;
          useAsync = true;
          result = await model.executeAsync(feed, outputNodes);
        }
      }
      const list = Array.isArray(result) ? result : [result];
      try {
        const out = new Map<string, HostTensor>();
        for (let i = 0; i < outputs.length; i++) out.set(outputs[i]!.name, await fromTensor(list[i]!));
        return out;
      } finally {
        for (const t of list) t.dispose();
      }
    } finally {
      for (const t of Object.values(feed)) t.dispose();
    }
  };
  return {
    platform: "tensorflowjs_graph",
    signature: { inputs, outputs },
    run,
    dispose: () => {
      model.dispose();
    },
  };
}

async function loadLayers(tf: Tf, artifacts: tfjs.io.ModelArtifacts): Promise<Omit<LoadedModel, "batchable">> {
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const inputs: TensorSpec[] = model.inputs.map((t, i) => ({
    name: model.inputNames[i] ?? t.name,
    tensorName: t.name,
    dtype: toDType(t.dtype, `Input ${t.name}`),
    shape: normShape(t.shape),
  }));
  const outputs: TensorSpec[] = model.outputs.map((t, i) => ({
    name: model.outputNames[i] ?? t.name,
    tensorName: t.name,
    dtype: toDType(t.dtype, `Output ${t.name}`),
    shape: normShape(t.shape),
  }));
  const run = async (host: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> => {
    const feed = inputs.map((s) => toTensor(tf, host.get(s.name)!));
    try {
      const result = model.predict(feed.length === 1 ? feed[0]! : feed);
      const list = Array.isArray(result) ? result : [result];
      try {
        const out = new Map<string, HostTensor>();
        for (let i = 0; i < outputs.length; i++) out.set(outputs[i]!.name, await fromTensor(list[i]!));
        return out;
      } finally {
        for (const t of list) t.dispose();
      }
    } finally {
      for (const t of feed) t.dispose();
    }
  };
  return { platform: "tensorflowjs_layers", signature: { inputs, outputs }, run, dispose: () => model.dispose() };
}

interface SavedModelApi {
  loadSavedModel(path: string): Promise<{
    predict(inputs: tfjs.NamedTensorMap): tfjs.Tensor | tfjs.Tensor[] | tfjs.NamedTensorMap;
    dispose(): void;
  }>;
  getMetaGraphsFromSavedModel(path: string): Promise<
    {
      tags: string[];
      signatureDefs: Record<
        string,
        {
          inputs: Record<string, { name: string; dtype: string; shape: readonly unknown[] }>;
          outputs: Record<string, { name: string; dtype: string; shape: readonly unknown[] }>;
        }
      >;
    }[]
  >;
}

async function loadSavedModel(
  tf: Tf,
  location: ModelLocation,
  native: unknown,
): Promise<Omit<LoadedModel, "batchable">> {
  const api = (native as { node?: SavedModelApi } | undefined)?.node;
  if (api === undefined) {
    throw new Error(
      "SavedModel needs the tensorflow backend (tfjs-node or tfjs-node-gpu), which is not installed in this image",
    );
  }
  const metas = await api.getMetaGraphsFromSavedModel(location.path);
  const serving = metas.find((m) => m.tags.includes("serve"))?.signatureDefs["serving_default"];
  if (serving === undefined)
    throw new Error(`SavedModel in ${location.path} has no 'serve' tag with a serving_default signature`);
  const spec = (entries: typeof serving.inputs): TensorSpec[] =>
    Object.entries(entries).map(([key, t]) => ({
      name: key,
      tensorName: t.name,
      dtype: toDType(t.dtype, key),
      shape: savedModelShape(t.shape, key),
    }));
  const inputs = spec(serving.inputs);
  const outputs = spec(serving.outputs);
  const model = await api.loadSavedModel(location.path);
  const run = async (host: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> => {
    const feed: tfjs.NamedTensorMap = {};
    for (const [name, t] of host) feed[name] = toTensor(tf, t);
    try {
      const result = model.predict(feed);
      const named: tfjs.NamedTensorMap =
        result instanceof tf.Tensor
          ? { [outputs[0]!.name]: result }
          : Array.isArray(result)
            ? Object.fromEntries(outputs.map((o, i) => [o.name, result[i]!]))
            : result;
      try {
        const out = new Map<string, HostTensor>();
        for (const o of outputs) {
          const t = named[o.name];
          if (t !== undefined) out.set(o.name, await fromTensor(t));
        }
        return out;
      } finally {
        for (const t of Object.values(named)) t.dispose();
      }
    } finally {
      for (const t of Object.values(feed)) t.dispose();
    }
  };
  return {
    platform: "tensorflow_savedmodel",
    signature: { inputs, outputs },
    run,
    dispose: () => {
      model.dispose();
    },
  };
}

/**
 * Loads the model at `location` on the current backend and warms it up. `format` (from the
 * ModelDeployment) must agree with what model.json says; `native` is the tfjs-node module if loaded.
 */
export async function loadModel(
  tf: Tf,
  location: ModelLocation,
  format: ModelFormat | undefined,
  native: unknown,
): Promise<LoadedModel & { warnings: string[] }> {
  let base: Omit<LoadedModel, "batchable">;
  if (location.kind === "saved-model") {
    base = await loadSavedModel(tf, location, native);
  } else {
    const { json, artifacts } = await readModelArtifacts(tf.io, location.path);
    const declared =
      json.format ??
      (typeof json.modelTopology === "object" && json.modelTopology !== null && "node" in json.modelTopology
        ? "graph-model"
        : "layers-model");
    const wanted = format === "tfjs-graph" ? "graph-model" : format === "tfjs-layers" ? "layers-model" : declared;
    if (declared !== wanted)
      throw new Error(`The ModelDeployment says ${format ?? ""}, but ${location.path} is a ${declared}`);
    base = declared === "graph-model" ? await loadGraph(tf, json, artifacts) : await loadLayers(tf, artifacts);
  }
  const { signature, batchable, warnings } = await warmUp(base);
  return { platform: base.platform, signature, batchable, run: base.run, dispose: base.dispose, warnings };
}
