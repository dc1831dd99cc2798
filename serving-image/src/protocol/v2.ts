/**
 * Open Inference Protocol (KServe v2) over REST, with Triton's binary tensor data extension: server
 * and model metadata, and infer request decoding / response encoding (JSON and binary).
 */
import { ErrorCodes, ServingError, decodePathSegment, invalidArgument } from "./errors.ts";
import { asArray, isJsonObject } from "./json-reader.ts";
import { decodeFlatTensor, encodeTensorJson } from "./json-tensor.ts";
import { v2DatatypeOf, type ModelInfo } from "./model-info.ts";
import { formatShape, shapeMatches, sizeOfShape, type DType, type HostTensor, type ModelSignature } from "./tensor.ts";

export const V2Extensions = ["binary_tensor_data"] as const;

/** The header that says how many leading body bytes are the JSON part of a binary request/response. */
export const inferenceHeaderContentLength = "inference-header-content-length";

const knownDatatypes = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
];

const dtypeOfV2: Partial<Record<string, DType>> = { FP32: "float32", INT32: "int32", BOOL: "bool", BYTES: "string" };

const bytesPerElement: Record<Exclude<DType, "string">, number> = { float32: 4, int32: 4, bool: 1 };

export type V2Route =
  | { readonly kind: "live" | "ready" | "server-metadata" }
  | { readonly kind: "model-metadata" | "model-ready" | "infer"; readonly name: string; readonly version?: string };

const modelRoute = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/;

/** Parses a `/v2/...` path; returns undefined for paths that fit no route (404), throws 400 for a broken escape. */
export function parseV2Route(method: string, path: string): V2Route | undefined {
  if (method === "GET" && (path === "/v2" || path === "/v2/")) return { kind: "server-metadata" };
  if (method === "GET" && path === "/v2/health/live") return { kind: "live" };
  if (method === "GET" && path === "/v2/health/ready") return { kind: "ready" };
  const m = modelRoute.exec(path);
  if (m === null) return undefined;
  const [, name, version, tail] = m;
  const base = {
    name: decodePathSegment(name!, path),
    ...(version === undefined ? {} : { version: decodePathSegment(version, path) }),
  };
  if (tail === "/infer") return method === "POST" ? { kind: "infer", ...base } : undefined;
  if (tail === "/ready") return method === "GET" ? { kind: "model-ready", ...base } : undefined;
  return method === "GET" ? { kind: "model-metadata", ...base } : undefined;
}

/** `GET /v2` body. */
export function encodeV2ServerMetadata(version: string): unknown {
  return { name: "maas-serving", version, extensions: [...V2Extensions] };
}

/** `GET /v2/models/{m}` body; a tensor of unknown rank is reported as `[-1]`. */
export function encodeV2ModelMetadata(info: ModelInfo, signature: ModelSignature): unknown {
  const specs = (list: ModelSignature["inputs"]): unknown[] =>
    list.map((s) => ({ name: s.name, datatype: v2DatatypeOf[s.dtype], shape: s.shape === null ? [-1] : [...s.shape] }));
  return {
    name: info.name,
    versions: [info.version],
    platform: info.platform,
    inputs: specs(signature.inputs),
    outputs: specs(signature.outputs),
  };
}

export interface V2RequestedOutput {
  readonly name: string;
  readonly binary: boolean;
}

export interface V2InferRequest {
  readonly id: string | undefined;
  readonly inputs: Map<string, HostTensor>;
  /** Outputs to return, in order; every model output (with `binaryDefault`) when the request names none. */
  readonly outputs: readonly V2RequestedOutput[];
}

/**
 * The JSON part of an infer request. JSON.parse, not readJson: v2 tensors come as flat lists, which
 * JSON.parse builds as one array each, and its native number parsing is faster than readJson's
 * (bench:serving side by side: readJson cost 9–10% of v2 JSON throughput; it gains on the nested
 * lists of v1 requests).
 */
function parseJson(bytes: Buffer, end: number): unknown {
  try {
    return JSON.parse(bytes.toString("utf8", 0, end)) as unknown;
  } catch (err) {
    throw invalidArgument(`Malformed JSON in request body: ${(err as Error).message}`);
  }
}

function decodeBinary(bytes: Buffer, dtype: DType, shape: readonly number[], what: string): HostTensor {
  const size = sizeOfShape(shape);
  if (dtype === "string") {
    // BYTES: each element is a 4-byte little-endian length followed by that many bytes.
    const data: string[] = [];
    let off = 0;
    for (let i = 0; i < size; i++) {
      if (off + 4 > bytes.length)
        throw invalidArgument(`${what}: binary BYTES data ends inside element ${i} of ${size}`);
      const len = bytes.readUInt32LE(off);
      off += 4;
      if (off + len > bytes.length)
        throw invalidArgument(`${what}: binary BYTES element ${i} claims ${len} bytes past the end of its data`);
      data.push(bytes.toString("utf8", off, off + len));
      off += len;
    }
    if (off !== bytes.length)
      throw invalidArgument(`${what}: ${bytes.length - off} bytes left after ${size} BYTES elements`);
    return { dtype, shape: [...shape], data };
  }
  const expected = size * bytesPerElement[dtype];
  if (bytes.length !== expected) {
    throw invalidArgument(
      `${what}: binary_data_size is ${bytes.length} bytes, but shape ${formatShape(shape)} of ${v2DatatypeOf[dtype]} needs ${expected}`,
    );
  }
  // A view of the body where the tensor lies when it is aligned (the body is read so that binary
  // data is); a copy only when it is not. The batch copies it once more into memory the worker
  // takes over. Assumes a little-endian host, which every platform Node supports for this image is.
  const aligned = bytes.byteOffset % bytesPerElement[dtype] === 0;
  const raw = aligned ? bytes : new Uint8Array(bytes);
  const data =
    dtype === "float32"
      ? new Float32Array(raw.buffer, raw.byteOffset, size)
      : dtype === "int32"
        ? new Int32Array(raw.buffer, raw.byteOffset, size)
        : new Uint8Array(raw.buffer, raw.byteOffset, size);
  if (dtype === "bool") {
    for (let i = 0; i < raw.length; i++)
      if (raw[i]! > 1) throw invalidArgument(`${what}: BOOL element ${i} is ${raw[i]}, expected 0 or 1`);
  }
  return { dtype, shape: [...shape], data };
}

function readShape(value: unknown, what: string): number[] {
  const v = asArray(value);
  if (v === undefined) throw invalidArgument(`${what}: 'shape' must be a list of non-negative integers`);
  return v.map((d, i) => {
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw invalidArgument(`${what}: shape[${i}] must be a non-negative integer, got ${JSON.stringify(d)}`);
    }
    return d;
  });
}

function binaryParam(params: unknown, key: string, what: string): unknown {
  if (params === undefined) return undefined;
  if (!isJsonObject(params)) throw invalidArgument(`${what}: 'parameters' must be an object`);
  return params[key];
}

/**
 * Decodes an infer request body. With `headerLength` (from Inference-Header-Content-Length) the first
 * that many bytes are JSON and binary input tensors follow in input order.
 */
export function decodeV2Infer(
  body: Buffer,
  headerLength: number | undefined,
  modelName: string,
  signature: ModelSignature,
): V2InferRequest {
  if (
    headerLength !== undefined &&
    (!Number.isInteger(headerLength) || headerLength < 0 || headerLength > body.length)
  ) {
    throw invalidArgument(
      `Inference-Header-Content-Length is ${String(headerLength)}, but the body has only ${body.length} bytes`,
    );
  }
  const jsonEnd = headerLength ?? body.length;
  const parsed = parseJson(body, jsonEnd);
  if (!isJsonObject(parsed)) throw invalidArgument("Infer request must be a JSON object with an 'inputs' list");
  const binary = body.subarray(jsonEnd);
  let binaryOffset = 0;

  const id = parsed["id"];
  if (id !== undefined && typeof id !== "string") throw invalidArgument("'id' must be a string");
  const rawInputs = asArray(parsed["inputs"]);
  if (rawInputs === undefined || rawInputs.length === 0)
    throw invalidArgument("Infer request needs a non-empty 'inputs' list");

  const specs = new Map(signature.inputs.map((s) => [s.name, s]));
  const inputs = new Map<string, HostTensor>();
  rawInputs.forEach((raw, i) => {
    if (!isJsonObject(raw)) throw invalidArgument(`inputs[${i}] must be an object with name, shape, datatype and data`);
    const name = raw["name"];
    if (typeof name !== "string") throw invalidArgument(`inputs[${i}]: 'name' must be a string`);
    const what = `Input '${name}'`;
    const spec = specs.get(name);
    if (spec === undefined) {
      throw invalidArgument(
        `Unexpected inference input '${name}' for model '${modelName}'; it takes: ${signature.inputs.map((s) => s.name).join(", ")}`,
      );
    }
    if (inputs.has(name)) throw invalidArgument(`${what} appears more than once`);
    const datatype = raw["datatype"];
    if (typeof datatype !== "string" || !knownDatatypes.includes(datatype)) {
      throw invalidArgument(
        `${what}: unknown datatype ${JSON.stringify(datatype)}; expected one of ${knownDatatypes.join(", ")}`,
      );
    }
    const dtype = dtypeOfV2[datatype];
    if (dtype !== spec.dtype) {
      throw invalidArgument(
        `${what}: datatype is ${datatype}, but model '${modelName}' expects ${v2DatatypeOf[spec.dtype]}`,
      );
    }
    const shape = readShape(raw["shape"], what);
    if (!shapeMatches(spec.shape, shape)) {
      throw invalidArgument(
        `${what}: shape ${formatShape(shape)} does not match the model's ${formatShape(spec.shape)}`,
      );
    }
    const size = binaryParam(raw["parameters"], "binary_data_size", what);
    let tensor: HostTensor;
    if (size !== undefined) {
      if (headerLength === undefined) {
        throw invalidArgument(
          `${what} has binary_data_size, but the request has no Inference-Header-Content-Length header`,
        );
      }
      if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
        throw invalidArgument(`${what}: binary_data_size must be a non-negative integer`);
      }
      if ("data" in raw) throw invalidArgument(`${what} has both 'data' and binary_data_size`);
      if (binaryOffset + size > binary.length) {
        throw invalidArgument(
          `${what}: binary_data_size ${size} runs past the end of the body (${binary.length - binaryOffset} binary bytes remain)`,
        );
      }
      tensor = decodeBinary(binary.subarray(binaryOffset, binaryOffset + size), dtype, shape, what);
      binaryOffset += size;
    } else {
      if (!("data" in raw)) throw invalidArgument(`${what} has neither 'data' nor a binary_data_size parameter`);
      tensor = decodeFlatTensor(raw["data"], dtype, shape, what);
    }
    inputs.set(name, tensor);
  });
  if (binaryOffset !== binary.length) {
    throw invalidArgument(
      `${binary.length - binaryOffset} bytes follow the JSON header that no input's binary_data_size accounts for`,
    );
  }
  for (const spec of signature.inputs) {
    if (!inputs.has(spec.name)) {
      throw invalidArgument(
        `Missing input '${spec.name}' for model '${modelName}'; it takes: ${signature.inputs.map((s) => s.name).join(", ")}`,
      );
    }
  }

  const binaryDefault = binaryParam(parsed["parameters"], "binary_data_output", "Request") === true;
  const rawOutputs = parsed["outputs"];
  let outputs: V2RequestedOutput[];
  if (rawOutputs === undefined) {
    outputs = signature.outputs.map((s) => ({ name: s.name, binary: binaryDefault }));
  } else {
    const requested = asArray(rawOutputs);
    if (requested === undefined) throw invalidArgument("'outputs' must be a list of {name}");
    const known = new Set(signature.outputs.map((s) => s.name));
    outputs = requested.map((raw, i) => {
      if (!isJsonObject(raw) || typeof raw["name"] !== "string")
        throw invalidArgument(`outputs[${i}] must be an object with a 'name'`);
      const name = raw["name"];
      if (!known.has(name)) {
        throw invalidArgument(
          `Unexpected inference output '${name}' for model '${modelName}'; it has: ${[...known].join(", ")}`,
        );
      }
      const flag = binaryParam(raw["parameters"], "binary_data", `Output '${name}'`);
      return { name, binary: flag === undefined ? binaryDefault : flag === true };
    });
  }
  return { id, inputs, outputs };
}

function binaryOf(t: HostTensor): Buffer {
  if (t.dtype === "string") {
    const parts: Buffer[] = [];
    for (const s of t.data as string[]) {
      const b = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const d = t.data as Float32Array | Int32Array | Uint8Array;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

export interface V2EncodedResponse {
  readonly body: Buffer;
  /** Set when binary outputs follow the JSON: the value of Inference-Header-Content-Length. */
  readonly headerLength: number | undefined;
}

/** Encodes an infer response; binary outputs are appended after the JSON in output order. */
export function encodeV2Infer(
  modelName: string,
  modelVersion: string,
  id: string | undefined,
  requested: readonly V2RequestedOutput[],
  outputs: ReadonlyMap<string, HostTensor>,
): V2EncodedResponse {
  const binaries: Buffer[] = [];
  const parts = requested.map((r) => {
    const t = outputs.get(r.name);
    if (t === undefined) throw new ServingError(ErrorCodes.internal, `Model produced no output '${r.name}'`);
    const head = `{"name":${JSON.stringify(r.name)},"datatype":"${v2DatatypeOf[t.dtype]}","shape":${JSON.stringify(t.shape)}`;
    if (r.binary) {
      const b = binaryOf(t);
      binaries.push(b);
      return `${head},"parameters":{"binary_data_size":${b.length}}}`;
    }
    return `${head},"data":${encodeTensorJson(t, { flat: true })}}`;
  });
  const idPart = id === undefined ? "" : `,"id":${JSON.stringify(id)}`;
  const json = `{"model_name":${JSON.stringify(modelName)},"model_version":${JSON.stringify(modelVersion)}${idPart},"outputs":[${parts.join(",")}]}`;
  if (binaries.length === 0) return { body: Buffer.from(json, "utf8"), headerLength: undefined };
  const head = Buffer.from(json, "utf8");
  return { body: Buffer.concat([head, ...binaries]), headerLength: head.length };
}
