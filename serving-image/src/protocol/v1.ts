/**
 * TensorFlow Serving REST API (v1): route parsing, predict request decoding (row and columnar
 * formats), and response encoding, matching TF Serving's shapes, messages and status codes.
 */
import { ErrorCodes, ServingError, decodePathSegment, invalidArgument } from "./errors.ts";
import { isJsonObject, isList, NumericList } from "./json-reader.ts";
import { decodeNestedTensor, encodeTensorJson } from "./json-tensor.ts";
import { tfDTypeOf, type ModelInfo, type ModelRef } from "./model-info.ts";
import {
  concatRows,
  formatShape,
  shapeMatches,
  type HostTensor,
  type ModelSignature,
  type TensorSpec,
} from "./tensor.ts";

export const V1Verbs = ["predict", "classify", "regress"] as const;
export type V1Verb = (typeof V1Verbs)[number];

export type V1Route =
  { readonly kind: "status" | "metadata"; readonly ref: ModelRef } | { readonly kind: V1Verb; readonly ref: ModelRef };

// The same shapes TF Serving's HTTP handler accepts: a name without '/' or ':', then at most one of
// /versions/<digits> and /labels/<label>.
const getRoute = /^\/v1\/models(?:\/([^/:]+))?(?:\/versions\/(\d+)|\/labels\/([^/:]+))?(\/metadata)?$/i;
const postRoute = /^\/v1\/models\/([^/:]+)(?:\/versions\/(\d+)|\/labels\/([^/:]+))?:(predict|classify|regress)$/i;

function refOf(path: string, name: string, version: string | undefined, label: string | undefined): ModelRef {
  const ref: { name: string; version?: string; label?: string } = { name: decodePathSegment(name, path) };
  if (version !== undefined) ref.version = String(Number(version));
  if (label !== undefined) ref.label = decodePathSegment(label, path);
  return ref;
}

/** Parses a `/v1/...` path; anything that fits no route is TF Serving's 400 "Malformed request". */
export function parseV1Route(method: string, path: string): V1Route {
  const malformed = (): ServingError => invalidArgument(`Malformed request: ${method} ${path}`);
  if (method === "GET") {
    const m = getRoute.exec(path);
    if (m === null) throw malformed();
    const [, name, version, label, metadata] = m;
    if (name === undefined) throw invalidArgument("Missing model name in request.");
    return { kind: metadata === undefined ? "status" : "metadata", ref: refOf(path, name, version, label) };
  }
  if (method === "POST") {
    const m = postRoute.exec(path);
    if (m === null) throw malformed();
    const [, name, version, label, verb] = m;
    return { kind: verb!.toLowerCase() as V1Verb, ref: refOf(path, name!, version, label) };
  }
  throw malformed();
}

/** TF Serving's not-found messages, which differ between the status API and the serving APIs. */
export function v1NotFound(kind: "status" | "serving", ref: ModelRef, what: "model" | "version"): ServingError {
  if (kind === "status") {
    return new ServingError(
      ErrorCodes.notFound,
      what === "model"
        ? `Could not find any versions of model ${ref.name}`
        : `Could not find version ${ref.version ?? ""} of model ${ref.name}`,
    );
  }
  const spec = ref.version === undefined ? `Latest(${ref.name})` : `Specific(${ref.name}, ${ref.version})`;
  return new ServingError(ErrorCodes.notFound, `Servable not found for request: ${spec}`);
}

/** 400 for a label that is not configured (maas does not assign labels yet). */
export function v1UnknownLabel(label: string): ServingError {
  return invalidArgument(`Unrecognized servable version label: ${label}`);
}

/** The GetModelStatus JSON body for one version. */
export function encodeV1Status(info: ModelInfo): unknown {
  const ok = info.state === "AVAILABLE";
  return {
    model_version_status: [
      {
        version: info.version,
        state: info.state,
        status: {
          error_code: ok ? "OK" : info.state === "END" ? "UNKNOWN" : "OK",
          error_message: ok ? "" : info.reason,
        },
      },
    ],
  };
}

function encodeSpecs(specs: readonly TensorSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of specs) {
    out[s.name] = {
      dtype: tfDTypeOf[s.dtype],
      tensor_shape:
        s.shape === null
          ? { dim: [], unknown_rank: true }
          : { dim: s.shape.map((d) => ({ size: String(d), name: "" })), unknown_rank: false },
      name: s.tensorName,
    };
  }
  return out;
}

/** The GetModelMetadata JSON body (note the doubled `signature_def`, as TF Serving writes it). */
export function encodeV1Metadata(info: ModelInfo, signature: ModelSignature): unknown {
  return {
    model_spec: { name: info.name, signature_name: "", version: info.version },
    metadata: {
      signature_def: {
        signature_def: {
          serving_default: {
            inputs: encodeSpecs(signature.inputs),
            outputs: encodeSpecs(signature.outputs),
            method_name: "tensorflow/serving/predict",
          },
        },
      },
    },
  };
}

export type V1Format = "row" | "columnar";

export interface V1PredictRequest {
  readonly format: V1Format;
  readonly inputs: Map<string, HostTensor>;
}

function checkKeys(obj: Record<string, unknown>, signature: ModelSignature, where: string): void {
  const names = signature.inputs.map((s) => s.name);
  for (const key of Object.keys(obj)) {
    if (!names.includes(key)) {
      throw invalidArgument(`Unknown input '${key}' in ${where}; the model takes: ${names.join(", ")}`);
    }
  }
  for (const name of names) {
    if (!(name in obj))
      throw invalidArgument(`Missing input '${name}' in ${where}; the model takes: ${names.join(", ")}`);
  }
}

function checkShape(spec: TensorSpec, t: HostTensor, what: string): void {
  if (!shapeMatches(spec.shape, t.shape)) {
    throw invalidArgument(
      `Input '${spec.name}' ${what} has shape ${formatShape(t.shape)}, but the model expects ${formatShape(spec.shape)}`,
    );
  }
}

function decodeRows(list: unknown[] | NumericList, signature: ModelSignature): Map<string, HostTensor> {
  if (list.length === 0) throw invalidArgument("'instances' is an empty list; send at least one instance");
  const inputs = new Map<string, HostTensor>();
  const single = signature.inputs.length === 1 ? signature.inputs[0] : undefined;
  // A list of numbers (the common case, read flat) has no objects in it.
  const instances = list instanceof NumericList ? undefined : list;
  const named = instances?.some(isJsonObject) === true;
  if (single !== undefined && !named) {
    const t = decodeNestedTensor(list, single.dtype, `'instances' (input '${single.name}', ${single.dtype})`);
    checkShape(single, t, "built from 'instances'");
    inputs.set(single.name, t);
    return inputs;
  }
  if (!named || instances === undefined) {
    throw invalidArgument(
      `The model has ${signature.inputs.length} inputs (${signature.inputs.map((s) => s.name).join(", ")}): each instance must be an object naming them`,
    );
  }
  instances.forEach((inst, i) => {
    if (!isJsonObject(inst))
      throw invalidArgument(`Instance ${i} is not an object, but other instances are; mix of formats`);
    checkKeys(inst, signature, `instance ${i}`);
  });
  for (const spec of signature.inputs) {
    // One row per instance; decoding each row separately gives precise error positions.
    const rows = instances.map((inst, i) =>
      decodeNestedTensor(
        [(inst as Record<string, unknown>)[spec.name]],
        spec.dtype,
        `instance ${i}, input '${spec.name}' (${spec.dtype})`,
      ),
    );
    const firstShape = rows[0]!.shape;
    rows.forEach((r, i) => {
      if (formatShape(r.shape) !== formatShape(firstShape)) {
        throw invalidArgument(
          `Input '${spec.name}' has shape ${formatShape(r.shape.slice(1))} in instance ${i} but ${formatShape(firstShape.slice(1))} in instance 0; all instances must agree`,
        );
      }
    });
    const t = concatRows(rows);
    checkShape(spec, t, "built from 'instances'");
    inputs.set(spec.name, t);
  }
  return inputs;
}

function decodeColumns(value: unknown, signature: ModelSignature): Map<string, HostTensor> {
  const inputs = new Map<string, HostTensor>();
  const single = signature.inputs.length === 1 ? signature.inputs[0] : undefined;
  // A single-input model takes the bare tensor, or an object naming its one input.
  const namedSingle =
    single !== undefined && isJsonObject(value) && Object.keys(value).length === 1 && single.name in value;
  if (single !== undefined && !namedSingle) {
    if (isJsonObject(value)) {
      throw invalidArgument(
        `Unknown input(s) ${Object.keys(value)
          .map((k) => `'${k}'`)
          .join(", ")} in 'inputs'; the model takes: ${single.name}`,
      );
    }
    const t = decodeNestedTensor(value, single.dtype, `'inputs' (input '${single.name}', ${single.dtype})`);
    checkShape(single, t, "in 'inputs'");
    inputs.set(single.name, t);
    return inputs;
  }
  if (!isJsonObject(value)) {
    throw invalidArgument(
      `The model has ${signature.inputs.length} inputs: 'inputs' must be an object mapping ${signature.inputs.map((s) => s.name).join(", ")} to tensors`,
    );
  }
  checkKeys(value, signature, "'inputs'");
  for (const spec of signature.inputs) {
    const t = decodeNestedTensor(value[spec.name], spec.dtype, `'inputs.${spec.name}' (${spec.dtype})`);
    checkShape(spec, t, "in 'inputs'");
    inputs.set(spec.name, t);
  }
  return inputs;
}

/** Decodes a parsed `:predict` body against the model's signature; every client mistake is a 400. */
export function decodeV1Predict(body: unknown, signature: ModelSignature): V1PredictRequest {
  if (!isJsonObject(body)) throw invalidArgument("Request body must be a JSON object with 'instances' or 'inputs'");
  const sig = body["signature_name"];
  if (sig !== undefined) {
    if (typeof sig !== "string") throw invalidArgument("'signature_name' must be a string");
    if (sig !== "" && sig !== "serving_default") {
      throw invalidArgument(`Serving signature name: "${sig}" not found in signature def`);
    }
  }
  const hasInstances = "instances" in body;
  const hasInputs = "inputs" in body;
  if (hasInstances && hasInputs) {
    throw invalidArgument("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist");
  }
  if (hasInstances) {
    const instances = body["instances"];
    if (!isList(instances)) throw invalidArgument("'instances' must be a list, one entry per example");
    return { format: "row", inputs: decodeRows(instances, signature) };
  }
  if (hasInputs) return { format: "columnar", inputs: decodeColumns(body["inputs"], signature) };
  throw invalidArgument("Missing 'inputs' or 'instances' key");
}

/**
 * JSON text of a `:predict` response: `{"predictions": …}` for row requests (a list per row; objects
 * per row when the model has several outputs) or `{"outputs": …}` for columnar requests.
 */
export function encodeV1Predict(format: V1Format, outputs: ReadonlyMap<string, HostTensor>): string {
  const entries = [...outputs.entries()];
  if (format === "columnar") {
    if (entries.length === 1) return `{"outputs":${encodeTensorJson(entries[0]![1])}}`;
    return `{"outputs":{${entries.map(([name, t]) => `${JSON.stringify(name)}:${encodeTensorJson(t)}`).join(",")}}}`;
  }
  if (entries.length === 1) {
    const t = entries[0]![1];
    if (t.shape.length === 0)
      throw new ServingError(
        ErrorCodes.internal,
        `Output '${entries[0]![0]}' is a scalar and cannot be split into rows`,
      );
    return `{"predictions":${encodeTensorJson(t)}}`;
  }
  const rows = entries[0]![1].shape[0] ?? 0;
  for (const [name, t] of entries) {
    if (t.shape[0] !== rows) {
      throw new ServingError(
        ErrorCodes.invalidArgument,
        `Tensor name: ${name} has inconsistent batch size: ${t.shape[0] ?? "scalar"} expecting: ${rows}; use the columnar ('inputs') format`,
      );
    }
  }
  const parts: string[] = [];
  for (let r = 0; r < rows; r++) {
    parts.push(
      `{${entries.map(([name, t]) => `${JSON.stringify(name)}:${encodeTensorJson(t, { from: r, to: r + 1, dropFirstDim: true })}`).join(",")}}`,
    );
  }
  return `{"predictions":[${parts.join(",")}]}`;
}
