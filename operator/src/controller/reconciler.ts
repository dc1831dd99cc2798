/** Which object to reconcile. The key is all a reconcile gets: it reads the current state itself. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** What a reconcile asks for when it returns normally. Errors are the other two outcomes (see `Reconciler`). */
export type ReconcileResult = { readonly kind: "done" } | { readonly kind: "requeueAfter"; readonly delayMs: number };

/** Converged for now: nothing to do until something changes. */
export const done: ReconcileResult = { kind: "done" };

/** Converged for now, but look again after `delayMs` (e.g. at the next time-based status transition). */
export function requeueAfter(delayMs: number): ReconcileResult {
  if (!(delayMs > 0)) throw new Error(`requeueAfter needs a positive delay in ms, got ${delayMs}`);
  return { kind: "requeueAfter", delayMs };
}

/**
 * The controller-runtime contract, which every reconciler in this operator keeps:
 *
 * - It gets only a key (namespace/name), never the event that caused it. Any number of events may
 *   collapse into one call, and a call may come with no change at all (resync, restart, requeue).
 * - It is level-triggered: it reads the current state (from the informer caches), computes the
 *   desired state, and makes the world match. It never relies on seeing a particular transition.
 * - It is idempotent: calling it again with nothing changed makes no writes.
 * - It has exactly four outcomes:
 *   1. return `done` — converged; nothing happens until something changes;
 *   2. return `requeueAfter(ms)` — converged, look again after a delay (back-off is reset);
 *   3. throw a `TemporaryError` (or any error that is not a PermanentError) — retry with the
 *      queue's per-key exponential back-off, or after the error's own delay. 409 Conflicts count
 *      here too but are retried quietly: someone else wrote first and the next pass reads the newer object;
 *   4. throw a `PermanentError` — stop retrying this key; the controller hands the error to its
 *      `onTerminalError` hook, which records the condition and a Warning Event on the object.
 * - The object may be gone: a key for a deleted object reconciles to `done` (owner references and
 *   the garbage collector clean up children).
 * - The same key is never reconciled by two workers at once; different keys are, concurrently.
 * - `signal` aborts when the operator shuts down or loses leadership: stop early, write nothing more.
 */
export interface Reconciler {
  reconcile(key: ObjectKey, signal: AbortSignal): Promise<ReconcileResult>;
}

/** The queue's string form of a key: "namespace/name" (cluster-scoped objects: "name"). */
export function formatKey(key: ObjectKey): string {
  return key.namespace === "" ? key.name : `${key.namespace}/${key.name}`;
}

/** Parses a queue key; throws on a string that no `formatKey` produced. */
export function parseKey(key: string): ObjectKey {
  const parts = key.split("/");
  if (parts.length === 1 && parts[0]) return { namespace: "", name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { namespace: parts[0], name: parts[1] };
  throw new Error(`invalid object key ${JSON.stringify(key)}: expected "namespace/name" or "name"`);
}
