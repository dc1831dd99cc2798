/**
 * Errors that carry retry intent (after kopf's TemporaryError / PermanentError), and the one
 * function that turns any thrown value into what the controller should do about it.
 */

/**
 * A failure worth retrying: after `delayMs` if given, else with the queue's per-key back-off, capped
 * at `maxDelayMs` when given (for failures that heal without any event we watch).
 */
export class TemporaryError extends Error {
  override readonly name = "TemporaryError";
  readonly delayMs: number | undefined;
  readonly maxDelayMs: number | undefined;

  constructor(message: string, delayMs?: number, options?: ErrorOptions & { maxDelayMs?: number }) {
    super(message, options);
    this.delayMs = delayMs;
    this.maxDelayMs = options?.maxDelayMs;
  }
}

/**
 * A failure that retrying cannot fix (invalid spec, a child we do not own). The controller stops
 * retrying the key; a later change to the object enqueues it again anyway.
 */
export class PermanentError extends Error {
  override readonly name = "PermanentError";
  /** CamelCase reason for the condition and the Warning Event, e.g. "ChildNotOwned". */
  readonly reason: string;

  constructor(reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** A non-2xx answer from the API server, with its Status object's reason when there is one. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly statusCode: number;
  /** metav1.Status reason, e.g. "Conflict", "NotFound", "AlreadyExists", "Invalid". */
  readonly reason: string;
  readonly verb: string;
  readonly path: string;
  /** The API server's own message (metav1.Status message), without verb, path and code. */
  readonly detail: string;

  constructor(verb: string, path: string, statusCode: number, reason: string, message: string) {
    super(`${verb} ${path}: ${statusCode} ${reason}: ${message}`);
    this.statusCode = statusCode;
    this.reason = reason;
    this.detail = message;
    this.verb = verb;
    this.path = path;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.statusCode === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.statusCode === 409 && err.reason !== "AlreadyExists";
}

export function isAlreadyExists(err: unknown): boolean {
  return err instanceof ApiError && err.statusCode === 409 && err.reason === "AlreadyExists";
}

/** What the controller does with a failed reconcile. */
export type ErrorDisposition =
  | { readonly action: "retry"; readonly quiet: boolean; readonly delayMs?: number; readonly maxDelayMs?: number }
  | { readonly action: "terminal"; readonly reason: string };

/**
 * Classifies a thrown value. Conflicts retry quietly (someone else wrote first; the next pass
 * reads the newer object). 400/422 are terminal: the request we built is invalid and retrying
 * sends the same request; a spec change enqueues the key again. Everything else — network
 * failures, 403 while RBAC is being fixed, 404 of a just-deleted parent, 429, 5xx, and errors
 * we do not recognise — retries with back-off, because giving up silently is worse than retrying slowly.
 */
export function classifyError(err: unknown): ErrorDisposition {
  if (err instanceof PermanentError) return { action: "terminal", reason: err.reason };
  if (err instanceof TemporaryError) {
    if (err.delayMs !== undefined) return { action: "retry", quiet: false, delayMs: err.delayMs };
    return err.maxDelayMs === undefined
      ? { action: "retry", quiet: false }
      : { action: "retry", quiet: false, maxDelayMs: err.maxDelayMs };
  }
  if (err instanceof ApiError) {
    if (isConflict(err)) return { action: "retry", quiet: true };
    if (err.statusCode === 400 || err.statusCode === 422)
      return { action: "terminal", reason: err.reason || "Invalid" };
  }
  return { action: "retry", quiet: false };
}
