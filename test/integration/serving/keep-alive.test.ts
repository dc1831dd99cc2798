// Keep-alive clients against the real server process, byte by byte over real sockets: a connection
// is closed only after a response that says `Connection: close`. A client told nothing may finish its
// body at its own pace and send its next request on the same connection.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { copyHumanModel, nest, seededFloats, tempDir } from "./fixtures.ts";
import { RawConnection, startServing, type ServingProcess } from "./harness.ts";

const predict = "/v1/models/model:predict";
const good = JSON.stringify({ instances: [nest(seededFloats(5, 32 * 32 * 3), [32, 32, 3])] });
const json = { "content-type": "application/json" };

/** A request refused before its body is read: sent as `head` + `first`, finished later with `rest`. */
interface EarlyRefusal {
  readonly name: string;
  readonly head: string;
  readonly first: string;
  readonly rest: string;
  readonly status: number;
  readonly error: RegExp;
}

const chunk = (data: string): string => `${data.length.toString(16)}\r\n${data}\r\n`;
const refusals: EarlyRefusal[] = [
  {
    name: "a body over the size limit by its Content-Length (413)",
    head: RawConnection.head(predict, { ...json, "content-length": 200_000 }),
    first: " ".repeat(1_000),
    rest: " ".repeat(199_000),
    status: 413,
    error: /Request body of 200000 bytes exceeds the limit of 100000 bytes/,
  },
  {
    name: "a chunked body that grows over the size limit (413)",
    head: RawConnection.head(predict, { ...json, "transfer-encoding": "chunked" }),
    first: chunk(" ".repeat(150_000)),
    rest: chunk(" ".repeat(1_000)) + "0\r\n\r\n",
    status: 413,
    error: /exceeds the limit of 100000 bytes/,
  },
  {
    name: "a request for an unknown model (404)",
    head: RawConnection.head("/v1/models/nope:predict", { ...json, "content-length": good.length }),
    first: good.slice(0, 1_000),
    rest: good.slice(1_000),
    status: 404,
    error: /Servable not found for request: Latest\(nope\)/,
  },
  {
    name: "a compressed body (415)",
    head: RawConnection.head(predict, { ...json, "content-encoding": "gzip", "content-length": good.length }),
    first: good.slice(0, 1_000),
    rest: good.slice(1_000),
    status: 415,
    error: /Content-Encoding gzip is not supported/,
  },
  {
    name: "a malformed Inference-Header-Content-Length (400)",
    head: RawConnection.head("/v2/models/model/infer", {
      ...json,
      "inference-header-content-length": "lots",
      "content-length": 2_000,
    }),
    first: "{".padEnd(1_000),
    rest: " ".repeat(1_000),
    status: 400,
    error: /Inference-Header-Content-Length must be a non-negative integer, got "lots"/,
  },
];

describe("maas-serving with keep-alive clients", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  let expected: string;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("keep-alive"));
    // A short body deadline: a connection-closing timer tied to it would fire while the client pauses.
    server = await startServing(dir, { MAAS_MAX_BODY_BYTES: "100000", MAAS_BODY_TIMEOUT_MS: "1000" });
    await server.waitReady();
    const conn = await RawConnection.open(server.url);
    conn.write(RawConnection.head(predict, { ...json, "content-length": good.length }) + good);
    const res = await conn.response();
    assert.equal(res.status, 200, res.body.toString());
    expected = res.body.toString();
    conn.destroy();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const refusal of refusals) {
    it(`after ${refusal.name} refused before its body was read, closes the connection only as announced, even for a client that finishes its body late`, async () => {
      const conn = await RawConnection.open(server.url);
      try {
        conn.write(refusal.head + refusal.first);
        const refused = await conn.response();
        assert.equal(refused.status, refusal.status, refused.body.toString());
        assert.match((JSON.parse(refused.body.toString()) as { error: string }).error, refusal.error);
        // A slow but legal client: it sends the rest of its body after the server's body deadline.
        await sleep(1_500);
        conn.write(refusal.rest);
        if (refused.headers["connection"] === "close") {
          await conn.closed;
          return;
        }
        // Not told to close: the connection must take the next request.
        conn.write(RawConnection.head(predict, { ...json, "content-length": good.length }) + good);
        const next = await conn.response();
        assert.equal(next.status, 200, next.body.toString());
        assert.equal(next.body.toString(), expected);
      } finally {
        conn.destroy();
      }
    });
  }

  it("says Connection: close on every refusal made before the body was read, and still lets the client read it whole", async () => {
    for (const refusal of refusals) {
      const conn = await RawConnection.open(server.url);
      try {
        conn.write(refusal.head + refusal.first);
        const refused = await conn.response();
        assert.equal(refused.status, refusal.status);
        assert.equal(refused.headers["connection"], "close", refusal.name);
        assert.deepEqual(Object.keys(JSON.parse(refused.body.toString()) as object), ["error"]);
        conn.write(refusal.rest);
        await conn.closed;
      } finally {
        conn.destroy();
      }
    }
  });

  it("keeps the connection for the next request after an error found in a body it read whole", async () => {
    const conn = await RawConnection.open(server.url);
    try {
      const malformed = '{"instances": [1, 2';
      conn.write(RawConnection.head(predict, { ...json, "content-length": malformed.length }) + malformed);
      const bad = await conn.response();
      assert.equal(bad.status, 400);
      assert.notEqual(bad.headers["connection"], "close");
      conn.write(RawConnection.head(predict, { ...json, "content-length": good.length }) + good);
      const next = await conn.response();
      assert.equal(next.status, 200);
      assert.equal(next.body.toString(), expected);
    } finally {
      conn.destroy();
    }
  });
});
