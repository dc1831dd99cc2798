/**
 * Messages between the main thread and inference worker threads.
 */
import type { Backend, ModelFormat } from "../contract.ts";
import type { ResolvedBackend } from "../backends/select.ts";
import { ownsBuffer, type HostTensor, type ModelSignature } from "../protocol/tensor.ts";

export interface WorkerInit {
  readonly modelPath: string;
  readonly format: ModelFormat | undefined;
  readonly backend: Backend;
}

export type ToWorker =
  { readonly type: "run"; readonly id: number; readonly inputs: [string, HostTensor][] } | { readonly type: "close" };

export type FromWorker =
  | {
      readonly type: "ready";
      readonly backend: ResolvedBackend;
      readonly skipped: readonly string[];
      readonly platform: string;
      readonly signature: ModelSignature;
      readonly batchable: boolean;
      readonly warnings: readonly string[];
      readonly loadSeconds: number;
    }
  | { readonly type: "failed"; readonly reason: string }
  | { readonly type: "result"; readonly id: number; readonly outputs: [string, HostTensor][] }
  | { readonly type: "error"; readonly id: number; readonly message: string };

/** The transferable buffers of tensors, so posting them moves memory instead of copying it. */
export function transferables(tensors: Iterable<HostTensor>): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const t of tensors) {
    if (Array.isArray(t.data)) continue;
    const buf = t.data.buffer;
    // Only whole, unshared buffers can move; views into a bigger buffer are copied by the clone.
    if (buf instanceof ArrayBuffer && ownsBuffer(t) && !out.includes(buf)) out.push(buf);
  }
  return out;
}
