/**
 * Request bodies: reading one within its limits (size 413; deadlines for slow senders 408; the memory
 * budget for a body without a declared length), and closing a connection whose request body is left
 * unread without losing the response.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Admission } from "../admission.ts";
import { ErrorCodes, ServingError } from "../protocol/errors.ts";

export interface BodyLimits {
  readonly maxBytes: number;
  /** The whole body must arrive within this many milliseconds. */
  readonly timeoutMs: number;
  /** The body's first bytes must follow its headers, and every later read the one before, within this. */
  readonly idleTimeoutMs: number;
}

/**
 * How long a connection that is closing keeps reading (and discarding) what its client still sends,
 * after the response is out and our side is shut. Long enough for a client to read the response and
 * stop; a client that sends on is cut off then.
 */
const lingerMs = 2_000;

/** The body length the request declares; throws 413 (before anything is read) when it is over the limit. */
export function declaredLength(req: IncomingMessage, limits: BodyLimits): number | undefined {
  const header = req.headers["content-length"];
  // Node's parser has already refused a Content-Length that is not a number.
  const declared = header === undefined ? undefined : Number(header);
  if (declared !== undefined && declared > limits.maxBytes) {
    throw new ServingError(
      ErrorCodes.payloadTooLarge,
      `Request body of ${declared} bytes exceeds the limit of ${limits.maxBytes} bytes`,
    );
  }
  return declared;
}

/**
 * Resolves with the whole body, without ever buffering more than the limit. Rejects with 413 past the
 * size limit, with 413 or 429 when a body without a declared length outgrows the memory budget
 * (`admission` grows with it), and with 408 when the body does not start or stalls within
 * `idleTimeoutMs`, falls behind the pace that would bring it in within `timeoutMs`, or misses
 * `timeoutMs`. After a rejection the rest of the body is discarded, and the response must close the
 * connection (closeAfterResponse). `admission.received()` is called once the body is in.
 */
export function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  admission: Admission,
  options: { alignAt?: number | undefined } = {},
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = declaredLength(req, limits);
    const chunks: Buffer[] = [];
    // With a declared length and `alignAt`, the body is read into one buffer placed so that byte
    // `alignAt` (where binary tensors start) is 8-byte aligned: typed arrays can then view the
    // tensors where they lie, and the batch is the only copy.
    const alignAt = options.alignAt;
    let whole: Buffer | undefined;
    if (declared !== undefined && alignAt !== undefined && alignAt <= declared && declared > 0) {
      whole = Buffer.from(new ArrayBuffer(declared + 7), (8 - (alignAt % 8)) % 8, declared);
    }
    const startedAt = performance.now();
    let lastReadAt = startedAt;
    let received = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: ServingError | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === undefined) {
        admission.received();
        if (whole !== undefined) resolve(whole.subarray(0, received));
        else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
        return;
      }
      chunks.length = 0;
      // Keep the rest of the body flowing (into nothing), so the client can finish sending and read
      // the response.
      req.removeListener("data", onData);
      req.resume();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      lastReadAt = performance.now();
      received += chunk.length;
      if (received > limits.maxBytes) {
        finish(
          new ServingError(
            ErrorCodes.payloadTooLarge,
            `Request body of more than ${limits.maxBytes} bytes exceeds the limit of ${limits.maxBytes} bytes`,
          ),
        );
        return;
      }
      if (declared === undefined) {
        try {
          admission.grow(chunk.length);
        } catch (err) {
          finish(err as ServingError);
          return;
        }
      }
      if (whole !== undefined && received <= whole.length) chunk.copy(whole, received - chunk.length);
      else {
        if (whole !== undefined) {
          // More than declared (the HTTP parser does not allow it; kept safe regardless).
          chunks.push(whole.subarray(0, received - chunk.length));
          whole = undefined;
        }
        chunks.push(chunk);
      }
    };
    const tooSlow = (now: number): ServingError | undefined => {
      const elapsed = now - startedAt;
      const of = declared === undefined ? "" : ` of ${declared}`;
      const slow = (message: string): ServingError => new ServingError(ErrorCodes.requestTimeout, message);
      if (elapsed >= limits.timeoutMs)
        return slow(`Request body not received within ${limits.timeoutMs} ms (got ${received}${of} bytes)`);
      if (now - lastReadAt >= limits.idleTimeoutMs) {
        return slow(
          received === 0
            ? `Request body did not start within ${limits.idleTimeoutMs} ms of its headers (got 0${of} bytes)`
            : `Request body stalled for ${limits.idleTimeoutMs} ms (got ${received}${of} bytes)`,
        );
      }
      // On pace: at a steady rate the body would arrive by the deadline, allowing the first idle
      // interval for a slow start. A sender that falls behind cannot make it, and would hold its
      // admission until the deadline for nothing.
      const paced = limits.timeoutMs - limits.idleTimeoutMs;
      if (declared !== undefined && paced > 0 && received < (declared * (elapsed - limits.idleTimeoutMs)) / paced) {
        return slow(
          `Request body is arriving too slowly to finish within ${limits.timeoutMs} ms (got ${received} of ${declared} bytes in ${Math.round(elapsed)} ms)`,
        );
      }
      return undefined;
    };
    const check = (): void => {
      // The timer fires before this turn of the event loop reads the sockets; look only after it has,
      // so bytes that arrived while the server was busy count.
      setImmediate(() => {
        if (done) return;
        const now = performance.now();
        const err = tooSlow(now);
        if (err !== undefined) {
          finish(err);
          return;
        }
        arm(now);
      });
    };
    const arm = (now: number): void => {
      const next = Math.min(
        lastReadAt + limits.idleTimeoutMs,
        startedAt + limits.timeoutMs,
        now + limits.idleTimeoutMs,
      );
      // Whole milliseconds: Node keeps one timer list per distinct duration.
      timer = setTimeout(check, Math.max(1, Math.ceil(next - now)));
    };
    arm(startedAt);
    req.on("data", onData);
    req.once("end", () => {
      finish(undefined);
    });
    req.once("error", (err) => {
      finish(new ServingError(ErrorCodes.invalidArgument, `Request body could not be read: ${err.message}`));
    });
    req.once("aborted", () => {
      finish(new ServingError(ErrorCodes.invalidArgument, "The client aborted the request body"));
    });
  });
}

/** True when the request has a body that has not been read to its end (we refused it first). */
export function bodyLeftUnread(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  const hasBody = (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
  return hasBody && !req.readableEnded;
}

/**
 * Makes `res` the connection's last response: it says `Connection: close`, so the client does not
 * send another request on it, and the connection closes once the client has been able to read it.
 */
export function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader("connection", "close");
  const socket = req.socket;
  // Node ends a `Connection: close` response with socket.destroySoon(), which destroys the socket as
  // soon as the response is written. With request bytes still unread, destroying it sends a TCP reset,
  // and a reset can make the client drop the response before reading it. Instead shut our side, keep
  // discarding what the client sends until its body ends or it closes, and give up after lingerMs
  // (nginx's lingering close, Go's closeWrite).
  socket.destroySoon = () => {
    socket.end();
    const linger = setTimeout(() => socket.destroy(), lingerMs);
    socket.once("close", () => {
      clearTimeout(linger);
    });
    // Once the client's body is in, nothing is left unread: close as soon as the response is out.
    const closeWhenWritten = (): void => {
      if (socket.writableFinished) socket.destroy();
      else socket.once("finish", () => socket.destroy());
    };
    if (req.readableEnded) closeWhenWritten();
    else req.once("end", closeWhenWritten);
    req.resume();
  };
}
