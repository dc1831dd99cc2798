/**
 * What the protocols need to know about the served model, independent of how it is loaded.
 */
import type { DType, ModelSignature } from "./tensor.ts";

/** TF Serving's servable states, used by /v1 status (AVAILABLE is the only one that serves). */
export const ModelStates = ["START", "LOADING", "AVAILABLE", "UNLOADING", "END"] as const;
export type ModelState = (typeof ModelStates)[number];

export interface ModelInfo {
  readonly name: string;
  readonly version: string;
  /** `tensorflowjs_graph`, `tensorflowjs_layers` or `tensorflow_savedmodel`. */
  readonly platform: string;
  readonly state: ModelState;
  /** Why the model is not AVAILABLE (load failure, draining, …); empty when it is. */
  readonly reason: string;
  /** Known once the model loaded; undefined before. */
  readonly signature: ModelSignature | undefined;
}

/** Where a request points: a name plus at most one of version and label. */
export interface ModelRef {
  readonly name: string;
  readonly version?: string;
  readonly label?: string;
}

/** The TensorFlow dtype names TF Serving metadata uses. */
export const tfDTypeOf: Record<DType, string> = {
  float32: "DT_FLOAT",
  int32: "DT_INT32",
  bool: "DT_BOOL",
  string: "DT_STRING",
};

/** The KServe v2 / Triton datatype names. */
export const v2DatatypeOf: Record<DType, string> = {
  float32: "FP32",
  int32: "INT32",
  bool: "BOOL",
  string: "BYTES",
};
