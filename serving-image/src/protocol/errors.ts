/**
 * Errors that carry their meaning, so every protocol maps them to the same HTTP status. The codes are
 * the canonical gRPC/TF Serving ones; both REST protocols answer `{"error": "<message>"}`.
 */

export const ErrorCodes = {
  invalidArgument: "INVALID_ARGUMENT",
  notFound: "NOT_FOUND",
  resourceExhausted: "RESOURCE_EXHAUSTED",
  unavailable: "UNAVAILABLE",
  deadlineExceeded: "DEADLINE_EXCEEDED",
  unimplemented: "UNIMPLEMENTED",
  internal: "INTERNAL",
  payloadTooLarge: "PAYLOAD_TOO_LARGE",
  requestTimeout: "REQUEST_TIMEOUT",
  unsupportedMediaType: "UNSUPPORTED_MEDIA_TYPE",
  /** The client went away before its answer (nginx's 499; nobody reads the response). */
  cancelled: "CANCELLED",
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const httpStatusOf: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  PAYLOAD_TOO_LARGE: 413,
  REQUEST_TIMEOUT: 408,
  UNSUPPORTED_MEDIA_TYPE: 415,
  CANCELLED: 499,
};

export class ServingError extends Error {
  readonly code: ErrorCode;
  /** Seconds a client should wait before retrying (sent as Retry-After), when the error is transient. */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, retryAfterSeconds?: number) {
    super(message);
    this.name = "ServingError";
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  get httpStatus(): number {
    return httpStatusOf[this.code];
  }
}

/** Shorthand for the most common error: the client sent something the model cannot take. */
export function invalidArgument(message: string): ServingError {
  return new ServingError(ErrorCodes.invalidArgument, message);
}

/** Normalises anything thrown into a ServingError; unknown errors become INTERNAL with their message. */
/** A percent-encoded path segment, decoded; a broken escape is the client's error (400), not ours. */
export function decodePathSegment(segment: string, path: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalidArgument(`Malformed request: ${path} has an invalid percent-encoding`);
  }
}

export function toServingError(err: unknown): ServingError {
  if (err instanceof ServingError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ServingError(ErrorCodes.internal, message);
}
