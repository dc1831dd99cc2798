/**
 * JSON ⇄ tensor conversion shared by both protocols: nested lists to flat typed storage (with shape
 * inference, ragged-list and element-type checks) and flat storage back to nested JSON text.
 */
import { invalidArgument as invalidArgumentOf } from "./errors.ts";
import { NumericList } from "./json-reader.ts";
import { allocateData, sizeOfShape, type DType, type HostTensor, type TensorData } from "./tensor.ts";

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `string ${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "…" : v)}`;
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  return typeof v;
}

function pathOf(indices: readonly number[]): string {
  return indices.map((i) => `[${i}]`).join("");
}

/**
 * Stores one JSON leaf into `data[i]`, checking it against `dtype`; returns an error text or undefined.
 * Kept tiny and branch-light because it runs once per element of every request.
 */
function storeLeaf(data: TensorData, i: number, v: unknown, dtype: DType): string | undefined {
  switch (dtype) {
    case "float32":
      if (typeof v !== "number") return `expected a number for float32, got ${describe(v)}`;
      (data as Float32Array)[i] = v;
      return undefined;
    case "int32":
      if (typeof v !== "number" || !Number.isInteger(v)) return `expected an integer for int32, got ${describe(v)}`;
      if (v < INT32_MIN || v > INT32_MAX) return `integer ${v} is outside the int32 range`;
      (data as Int32Array)[i] = v;
      return undefined;
    case "bool":
      if (typeof v !== "boolean") return `expected true or false for bool, got ${describe(v)}`;
      (data as Uint8Array)[i] = v ? 1 : 0;
      return undefined;
    case "string":
      if (typeof v === "string") {
        (data as string[])[i] = v;
        return undefined;
      }
      if (v !== null && typeof v === "object" && !Array.isArray(v) && "b64" in v) {
        return 'base64 values ({"b64": …}) are not supported for TensorFlow.js string tensors; send plain strings';
      }
      return `expected a string, got ${describe(v)}`;
  }
}

/** A list as JavaScript arrays (a NumericList met inside an ordinary list is walked as one). */
function nested(v: unknown): unknown {
  return v instanceof NumericList ? v.toNested() : v;
}

/** The indices of element `i` of a row-major tensor of `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return out;
}

/**
 * The numbers of a NumericList as `dtype`: float32 in one conversion; other types element by element
 * through the same check as any leaf, so a wrong type gets the same message (`where(i)` names element i).
 */
function fromNumbers(list: NumericList, dtype: DType, where: (i: number, err: string) => string): TensorData {
  if (dtype === "float32") return list.float32();
  const numbers = list.numbers();
  const data = allocateData(dtype, numbers.length);
  for (let i = 0; i < numbers.length; i++) {
    const err = storeLeaf(data, i, numbers[i], dtype);
    if (err !== undefined) throw invalidArgumentOf(where(i, err));
  }
  return data;
}

/** The shape a nested list implies, read along its first elements. */
function inferShape(value: unknown): number[] {
  const shape: number[] = [];
  let v = nested(value);
  while (Array.isArray(v)) {
    shape.push(v.length);
    if (v.length === 0) break;
    v = nested(v[0]);
  }
  return shape;
}

/**
 * Decodes a nested JSON list (or a scalar) into a tensor of `dtype`. Rejects ragged lists and elements
 * of the wrong type with a message naming `what` and the element's index.
 */
export function decodeNestedTensor(value: unknown, dtype: DType, what: string): HostTensor {
  if (value instanceof NumericList) {
    const shape = [...value.shape];
    const data = fromNumbers(value, dtype, (i, err) => `Bad value in ${what} at ${pathOf(unravel(i, shape))}: ${err}`);
    return { dtype, shape, data };
  }
  const shape = inferShape(value);
  const size = sizeOfShape(shape);
  const data = allocateData(dtype, size);
  let n = 0;
  const indices: number[] = [];
  const walk = (element: unknown, depth: number): void => {
    const v = nested(element);
    if (depth === shape.length) {
      if (Array.isArray(v)) {
        throw invalidArgumentOf(
          `Ragged list in ${what}: element ${pathOf(indices)} is a list, but its siblings are not`,
        );
      }
      const err = storeLeaf(data, n, v, dtype);
      if (err !== undefined) throw invalidArgumentOf(`Bad value in ${what} at ${pathOf(indices)}: ${err}`);
      n++;
      return;
    }
    if (!Array.isArray(v)) {
      throw invalidArgumentOf(
        `Ragged list in ${what}: element ${pathOf(indices)} is ${describe(v)}, expected a list of ${shape[depth]}`,
      );
    }
    if (v.length !== shape[depth]) {
      throw invalidArgumentOf(
        `Ragged list in ${what}: element ${pathOf(indices)} has ${v.length} entries, expected ${shape[depth]} like its first sibling`,
      );
    }
    indices.push(0);
    for (let i = 0; i < v.length; i++) {
      indices[depth] = i;
      walk(v[i], depth + 1);
    }
    indices.pop();
  };
  walk(value, 0);
  return { dtype, shape, data };
}

/**
 * Decodes `data` of a v2 input: a flat or nested list whose element count must equal the product of
 * `shape`. Nesting is not required to mirror the shape (KServe allows flat or nested).
 */
export function decodeFlatTensor(value: unknown, dtype: DType, shape: readonly number[], what: string): HostTensor {
  if (!Array.isArray(value) && !(value instanceof NumericList)) {
    throw invalidArgumentOf(`${what}: 'data' must be a list, got ${describe(value)}`);
  }
  const size = sizeOfShape(shape);
  // Count before allocating: the shape is the client's claim, the data is what it sent.
  const count = countLeaves(value);
  if (count !== size) {
    throw invalidArgumentOf(`${what}: 'data' has ${count} elements, but shape [${shape.join(",")}] needs ${size}`);
  }
  if (value instanceof NumericList) {
    const data = fromNumbers(value, dtype, (i, err) => `${what}: bad element ${i} of 'data': ${err}`);
    return { dtype, shape: [...shape], data };
  }
  const data = allocateData(dtype, size);
  let n = 0;
  const walk = (element: unknown): void => {
    const v = nested(element);
    if (Array.isArray(v)) {
      for (const e of v) walk(e);
      return;
    }
    const err = storeLeaf(data, n, v, dtype);
    if (err !== undefined) throw invalidArgumentOf(`${what}: bad element ${n} of 'data': ${err}`);
    n++;
  };
  walk(value);
  return { dtype, shape: [...shape], data };
}

function countLeaves(v: unknown): number {
  if (v instanceof NumericList) return v.size;
  if (!Array.isArray(v)) return 1;
  let n = 0;
  for (const e of v) n += countLeaves(e);
  return n;
}

/**
 * Shortest decimal text that reads back as the same float32, so 0.1f prints as `0.1` and not
 * `0.10000000149011612`. Non-finite values use the NaN/Infinity tokens that TF Serving emits.
 */
export function formatFloat32(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e21) return String(x);
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
  // Round-trip at precision p implies round-trip at p+1, so a binary search finds the shortest.
  let lo = 1;
  let hi = 9;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (Math.fround(Number(x.toPrecision(mid))) === x) hi = mid;
    else lo = mid + 1;
  }
  return String(Number(x.toPrecision(lo)));
}

function formatElement(t: HostTensor, i: number): string {
  switch (t.dtype) {
    case "float32":
      return formatFloat32((t.data as Float32Array)[i]!);
    case "int32":
      return String((t.data as Int32Array)[i]!);
    case "bool":
      return (t.data as Uint8Array)[i]! !== 0 ? "true" : "false";
    case "string":
      return JSON.stringify((t.data as string[])[i]!);
  }
}

/**
 * JSON text of rows `[from, to)` of a tensor as a nested list (or a scalar when the tensor is one and
 * no row range is asked for). `flat` writes the elements as one flat list instead (v2 style).
 */
export function encodeTensorJson(
  t: HostTensor,
  options: { from?: number; to?: number; flat?: boolean; dropFirstDim?: boolean } = {},
): string {
  const shape = t.shape;
  if (shape.length === 0) return options.flat === true ? `[${formatElement(t, 0)}]` : formatElement(t, 0);
  const rows = shape[0]!;
  const from = options.from ?? 0;
  const to = options.to ?? rows;
  const rowSize = rows === 0 ? 0 : t.data.length / rows;
  const parts: string[] = [];
  if (options.flat === true) {
    parts.push("[");
    for (let i = from * rowSize; i < to * rowSize; i++) {
      if (i > from * rowSize) parts.push(",");
      parts.push(formatElement(t, i));
    }
    parts.push("]");
    return parts.join("");
  }
  // dims of the slice being written: either the whole [to-from, ...rest] or a single row's rest.
  const dims = options.dropFirstDim === true ? shape.slice(1) : [to - from, ...shape.slice(1)];
  let index = from * rowSize;
  const write = (depth: number): void => {
    if (depth === dims.length) {
      parts.push(formatElement(t, index++));
      return;
    }
    parts.push("[");
    const n = dims[depth]!;
    for (let i = 0; i < n; i++) {
      if (i > 0) parts.push(",");
      write(depth + 1);
    }
    parts.push("]");
  };
  write(0);
  return parts.join("");
}
