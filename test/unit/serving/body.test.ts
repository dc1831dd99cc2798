import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import type { Admission } from "../../../serving-image/src/admission.ts";
import { readBody } from "../../../serving-image/src/http/body.ts";

const limits = { maxBytes: 1 << 20, timeoutMs: 5_000, idleTimeoutMs: 5_000 };
const admission: Admission = {
  grow: () => undefined,
  received: () => undefined,
  enqueued: () => undefined,
  release: () => undefined,
};

/** A request whose body arrives in `chunks`, with a Content-Length when `declared`. */
function request(chunks: Buffer[], declared: boolean): IncomingMessage {
  const req = new PassThrough() as unknown as IncomingMessage & PassThrough;
  const length = chunks.reduce((n, c) => n + c.length, 0);
  req.headers = declared ? { "content-length": String(length) } : {};
  setImmediate(() => {
    for (const c of chunks) req.write(c);
    req.end();
  });
  return req;
}

describe("request bodies", () => {
  it("places a body with a declared length so that byte alignAt is 8-byte aligned, whatever the chunks", async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    for (const alignAt of [0, 1, 5, 13, 999]) {
      for (const cut of [[], [7], [3, 500, 501]]) {
        const chunks = [0, ...cut, bytes.length]
          .slice(1)
          .map((end, i, ends) => bytes.subarray(i === 0 ? 0 : ends[i - 1], end));
        const body = await readBody(request(chunks, true), limits, admission, { alignAt });
        assert.ok(body.equals(bytes), "the same bytes");
        assert.equal((body.byteOffset + alignAt) % 8, 0, `alignAt ${alignAt}, chunks at ${cut.join(",")}`);
      }
    }
  });

  it("reads a body without a declared length as it comes (no alignment promised)", async () => {
    const bytes = Buffer.from("hello, world");
    const body = await readBody(request([bytes.subarray(0, 5), bytes.subarray(5)], false), limits, admission, {
      alignAt: 3,
    });
    assert.ok(body.equals(bytes));
  });
});
