/**
 * Streams one object from a source into a file, bounded by the model's byte budget, an inactivity
 * timeout and the overall deadline, and fsyncs it. Retries happen around this, one file at a time.
 */
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import { FetchError, describeNetworkError, localError } from "./errors.ts";

export interface OpenedObject {
  /** Size the source announced (Content-Length, S3 ContentLength, stat size), if any. */
  readonly size: number | undefined;
  readonly chunks: AsyncIterable<Uint8Array>;
  /** Stops the underlying transfer; the chunk iterator then ends or throws. */
  cancel(reason: Error): void;
}

/** Where model files come from. `rel` paths are relative to the directory of the URI's entry. */
export interface Source {
  /** Redacted text naming one object, for logs and messages ("GET https://h/m/x.bin", "s3://b/k"). */
  describe(rel: string): string;
  /** Starts reading one object; rejects with a FetchError (retryable for transient failures). */
  open(rel: string, signal: AbortSignal): Promise<OpenedObject>;
}

/** The shared byte allowance of one model; exceeding it is a permanent failure. */
export class ByteBudget {
  readonly max: number;
  used = 0;

  constructor(max: number) {
    this.max = max;
  }

  /** Reserves n bytes or throws a FetchError naming the limit and the object being read. */
  take(n: number, what: string): void {
    if (this.used + n > this.max) {
      throw new FetchError(
        `model is larger than the limit of ${this.max} bytes (MAAS_FETCH_MAX_BYTES) while reading ${what}`,
      );
    }
    this.used += n;
  }

  release(n: number): void {
    this.used -= n;
  }
}

export interface TransferOptions {
  readonly budget: ByteBudget;
  readonly timeoutMs: number;
  /** The overall deadline, or the first permanent failure of a sibling file; its reason is thrown when it fires. */
  readonly deadline: AbortSignal;
}

/**
 * Copies `rel` from the source into destPath (created or truncated, parent directories made), fsyncs it
 * and returns the byte count. On failure the bytes of this attempt are given back to the budget and the
 * error is a FetchError; the partial file is left for the caller's staging cleanup.
 */
export async function transferOnce(
  source: Source,
  rel: string,
  destPath: string,
  opts: TransferOptions,
): Promise<number> {
  const what = source.describe(rel);
  const ac = new AbortController();
  const onDeadline = (): void => {
    ac.abort(opts.deadline.reason);
  };
  if (opts.deadline.aborted) throw opts.deadline.reason as Error;
  opts.deadline.addEventListener("abort", onDeadline, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      ac.abort(new FetchError(`${what}: no data for ${opts.timeoutMs} ms`, { retryable: true }));
    }, opts.timeoutMs);
  };
  let written = 0;
  let opened: OpenedObject | undefined;
  const onAbort = (): void => opened?.cancel(ac.signal.reason as Error);
  ac.signal.addEventListener("abort", onAbort, { once: true });
  try {
    arm();
    opened = await raceAbort(source.open(rel, ac.signal), ac.signal);
    if (ac.signal.aborted) opened.cancel(ac.signal.reason as Error);
    const remaining = opts.budget.max - opts.budget.used;
    if (opened.size !== undefined && opened.size > remaining) {
      opened.cancel(new Error("over budget"));
      throw new FetchError(
        `model is larger than the limit of ${opts.budget.max} bytes (MAAS_FETCH_MAX_BYTES): ${what} alone is ${opened.size} bytes` +
          (opts.budget.used > 0 ? ` after ${opts.budget.used} bytes of other files` : ""),
      );
    }
    // Failures on our side of the copy (a full disk, a path that is a directory) are named as
    // such and never retried: another download would fail the same way.
    const local = <R>(op: Promise<R>): Promise<R> =>
      op.catch((err: unknown) => {
        throw localError(err, `write ${destPath}`);
      });
    await local(mkdir(dirname(destPath), { recursive: true }));
    const fh = await local(open(destPath, "w", 0o644));
    try {
      for await (const chunk of opened.chunks) {
        arm();
        opts.budget.take(chunk.byteLength, what);
        written += chunk.byteLength;
        await local(fh.write(chunk));
      }
      if (ac.signal.aborted) throw ac.signal.reason as Error;
      if (opened.size !== undefined && written !== opened.size) {
        throw new FetchError(`${what}: body ended after ${written} of ${opened.size} bytes`, { retryable: true });
      }
      await local(fh.sync());
    } finally {
      await fh.close();
    }
    return written;
  } catch (err) {
    opts.budget.release(written);
    if (ac.signal.aborted) throw ac.signal.reason as Error;
    if (opened !== undefined) opened.cancel(err instanceof Error ? err : new Error(String(err)));
    throw asFetchError(err, what);
  } finally {
    clearTimeout(timer);
    opts.deadline.removeEventListener("abort", onDeadline);
    ac.signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Turns a low-level error into a FetchError naming the object. Network-level failures (resets, refused
 * connections, sockets closed mid-body) are retryable; FetchErrors pass through unchanged.
 */
export function asFetchError(err: unknown, what: string): FetchError {
  if (err instanceof FetchError) return err;
  return new FetchError(`${what}: ${describeNetworkError(err)}`, { retryable: true, cause: err });
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
