/**
 * Protocol-neutral tensors: what the codecs produce from a request and what the data plane hands to
 * inference. Pure data, no TensorFlow.js objects, so they cross worker-thread boundaries by transfer.
 */

/** The TensorFlow.js dtypes a served model can take or give. */
export const DTypes = ["float32", "int32", "bool", "string"] as const;
export type DType = (typeof DTypes)[number];

/** Row-major element storage; `bool` is one byte per element (0 or 1). */
export type TensorData = Float32Array | Int32Array | Uint8Array | string[];

export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** One input or output of a model. `shape` uses -1 for unknown dimensions; `null` = unknown rank. */
export interface TensorSpec {
  /** The key clients use (signature key for graph models, layer name for layers models). */
  readonly name: string;
  /** The graph tensor name (`x:0`), reported by TF Serving metadata. */
  readonly tensorName: string;
  readonly dtype: DType;
  readonly shape: readonly number[] | null;
}

export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/** Number of elements of a shape (1 for a scalar). */
export function sizeOfShape(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Allocates zeroed storage for `size` elements of `dtype`. */
export function allocateData(dtype: DType, size: number): TensorData {
  switch (dtype) {
    case "float32":
      return new Float32Array(size);
    case "int32":
      return new Int32Array(size);
    case "bool":
      return new Uint8Array(size);
    case "string":
      return new Array<string>(size).fill("");
  }
}

/** Whether `shape` fits `spec` (same rank, equal fixed dims; -1 in the spec matches anything). */
export function shapeMatches(spec: readonly number[] | null, shape: readonly number[]): boolean {
  if (spec === null) return true;
  if (spec.length !== shape.length) return false;
  return spec.every((d, i) => d === -1 || d === shape[i]);
}

/** Formats a shape the way error messages show it: `[-1,32,32,3]`. */
export function formatShape(shape: readonly number[] | null): string {
  return shape === null ? "<unknown rank>" : `[${shape.join(",")}]`;
}

/** Rows `[from, to)` along the first dimension, sharing storage where the type allows. */
export function sliceRows(t: HostTensor, from: number, to: number): HostTensor {
  const rows = t.shape[0] ?? 1;
  const rowSize = rows === 0 ? 0 : t.data.length / rows;
  const shape = [to - from, ...t.shape.slice(1)];
  const data = Array.isArray(t.data)
    ? t.data.slice(from * rowSize, to * rowSize)
    : t.data.subarray(from * rowSize, to * rowSize);
  return { dtype: t.dtype, shape, data };
}

/** Whether the tensor's storage is a whole buffer of its own (which a worker thread can take over). */
export function ownsBuffer(t: HostTensor): boolean {
  if (Array.isArray(t.data)) return true;
  const d = t.data;
  return d.byteOffset === 0 && d.byteLength === d.buffer.byteLength;
}

/**
 * Concatenates tensors along the first dimension; all must share dtype and trailing dims. The result
 * owns its storage: one tensor that already does is returned as it is, anything else is copied once
 * (a view into a request body included, so the body is not kept alive or cloned whole).
 */
export function concatRows(parts: readonly HostTensor[]): HostTensor {
  const first = parts[0];
  if (first === undefined) throw new Error("concatRows needs at least one tensor");
  if (parts.length === 1 && ownsBuffer(first)) return first;
  let rows = 0;
  let size = 0;
  for (const p of parts) {
    rows += p.shape[0] ?? 1;
    size += p.data.length;
  }
  const shape = [rows, ...first.shape.slice(1)];
  if (first.dtype === "string") {
    // Copied one by one: spreading a large array into push() overflows the stack.
    const out = new Array<string>(size);
    let at = 0;
    for (const p of parts) for (const v of p.data as string[]) out[at++] = v;
    return { dtype: first.dtype, shape, data: out };
  }
  const out = allocateData(first.dtype, size) as Float32Array | Int32Array | Uint8Array;
  let offset = 0;
  for (const p of parts) {
    out.set(p.data as ArrayLike<number>, offset);
    offset += p.data.length;
  }
  return { dtype: first.dtype, shape, data: out };
}
