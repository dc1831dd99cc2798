/**
 * Reads a request body with a size limit (413) and a deadline for slow senders (408), without ever
 * buffering more than the limit.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCodes, ServingError } from "../protocol/errors.ts";

export interface BodyLimits {
  readonly maxBytes: number;
  readonly timeoutMs: number;
}

/**
 * Resolves with the whole body. On a limit breach it rejects at once and discards the rest of the
 * body (so the client still reads the 413); past the deadline it rejects and closes the connection
 * once the error response is out.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    const finish = (err: ServingError | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === undefined) {
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
        return;
      }
      chunks.length = 0;
      reject(err);
    };
    const discard = (): void => {
      // Keep reading so the client finishes sending and sees the response; give up on senders that
      // never finish.
      req.removeListener("data", onData);
      req.on("data", () => undefined);
      req.resume();
      const guard = setTimeout(() => req.socket.destroy(), limits.timeoutMs);
      req.once("end", () => {
        clearTimeout(guard);
      });
      req.once("close", () => {
        clearTimeout(guard);
      });
    };
    const tooLarge = (size: string): void => {
      finish(
        new ServingError(
          ErrorCodes.payloadTooLarge,
          `Request body of ${size} exceeds the limit of ${limits.maxBytes} bytes`,
        ),
      );
      discard();
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limits.maxBytes) {
        tooLarge(`more than ${limits.maxBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    };
    const timer = setTimeout(() => {
      const of = declared === undefined ? "" : ` of ${declared}`;
      res.setHeader("connection", "close");
      res.once("finish", () => req.socket.destroy());
      finish(
        new ServingError(
          ErrorCodes.requestTimeout,
          `Request body not received within ${limits.timeoutMs} ms (got ${received}${of} bytes)`,
        ),
      );
      req.removeListener("data", onData);
    }, limits.timeoutMs);
    if (declared !== undefined && declared > limits.maxBytes) {
      tooLarge(`${declared} bytes`);
      return;
    }
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
