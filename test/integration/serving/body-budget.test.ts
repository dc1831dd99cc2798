// The memory budget for request bodies, against the real server process over real sockets: bytes are
// reserved from Content-Length before a body is read (a chunked body's as they arrive), a request that
// would overflow the budget is refused, and the requests already admitted are answered in full.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { waitUntil } from "../../testbed/proc.ts";
import { copyHumanModel, nest, seededFloats, tempDir } from "./fixtures.ts";
import { RawConnection, metricValue, startServing, type RawResponse, type ServingProcess } from "./harness.ts";

const predict = "/v1/models/model:predict";
const body = JSON.stringify({ instances: [nest(seededFloats(11, 32 * 32 * 3), [32, 32, 3])] });
const json = { "content-type": "application/json" };
const head = (length: number): string => RawConnection.head(predict, { ...json, "content-length": length });
const errorOf = (res: RawResponse): string => (JSON.parse(res.body.toString()) as { error: string }).error;
// Room for three of these bodies and half of a fourth.
const budget = Math.floor(body.length * 3.5);

describe("maas-serving's memory budget for request bodies", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  let expected: string;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("body-budget"));
    server = await startServing(dir, {
      MAAS_BODY_MEMORY_BYTES: String(budget),
      // Neither the queue, the per-client share nor the deadlines should refuse anything here.
      MAAS_MAX_QUEUE: "64",
      MAAS_MAX_BODIES_PER_CLIENT: "0",
      MAAS_BODY_IDLE_TIMEOUT_MS: "30000",
    });
    await server.waitReady();
    expected = (await send(body)).body.toString();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(whole: string): Promise<RawResponse> {
    const conn = await RawConnection.open(server.url);
    try {
      conn.write(head(whole.length) + whole);
      return await conn.response();
    } finally {
      conn.destroy();
    }
  }

  /**
   * Three clients that have sent half their bodies: together they hold three bodies of the budget.
   * `finish` sends the other halves and checks that all three are answered as if nothing happened.
   */
  async function holdThreeBodies(): Promise<{ finish(): Promise<void> }> {
    const holders = await Promise.all(Array.from({ length: 3 }, () => RawConnection.open(server.url)));
    const half = Math.floor(body.length / 2);
    for (const h of holders) h.write(head(body.length) + body.slice(0, half));
    await waitUntil(
      "three requests reading their bodies",
      async () => (await metricValue(server.metricsUrl, "maas_inflight_requests")) === 3,
      10_000,
    );
    return {
      async finish() {
        for (const h of holders) h.write(body.slice(half));
        try {
          const answers = await Promise.all(holders.map((h) => h.response()));
          assert.deepEqual(
            answers.map((a) => a.status),
            [200, 200, 200],
          );
          for (const a of answers) assert.equal(a.body.toString(), expected);
        } finally {
          for (const h of holders) h.destroy();
        }
      },
    };
  }

  it("refuses a request whose body would overflow the budget with 429 from its headers, and answers the requests already admitted in full", async () => {
    const held = await holdThreeBodies();
    const conn = await RawConnection.open(server.url);
    try {
      conn.write(head(body.length));
      const refused = await conn.response();
      assert.equal(refused.status, 429, refused.body.toString());
      assert.equal(refused.headers["retry-after"], "1");
      assert.equal(refused.headers["connection"], "close");
      assert.equal(
        errorOf(refused),
        `Request bodies would exceed their memory budget of ${budget} bytes (${3 * body.length} held, this one needs ${body.length} more); retry later`,
      );
    } finally {
      conn.destroy();
    }
    await held.finish();
    // Their bytes are given back: the budget takes three at once again.
    const again = await Promise.all([send(body), send(body), send(body)]);
    assert.deepEqual(
      again.map((a) => a.status),
      [200, 200, 200],
    );
  });

  it("refuses a body larger than the whole budget with 413 naming the budget, before reading it", async () => {
    const conn = await RawConnection.open(server.url);
    try {
      conn.write(head(budget + 1));
      const refused = await conn.response();
      assert.equal(refused.status, 413);
      assert.equal(refused.headers["connection"], "close");
      assert.equal(
        errorOf(refused),
        `Request body of ${budget + 1} bytes exceeds the memory budget for request bodies (${budget} bytes)`,
      );
    } finally {
      conn.destroy();
    }
  });

  it("counts a chunked body's bytes as they arrive and refuses it once they would overflow the budget", async () => {
    const held = await holdThreeBodies();
    const conn = await RawConnection.open(server.url);
    try {
      // Half a body fits beside the three held; this one sends a whole body, in quarters.
      const quarter = Math.ceil(body.length / 4);
      const chunks = [0, 1, 2, 3].map((i) => body.slice(i * quarter, (i + 1) * quarter));
      conn.write(
        RawConnection.head(predict, { ...json, "transfer-encoding": "chunked" }) +
          chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("") +
          "0\r\n\r\n",
      );
      const refused = await conn.response();
      assert.equal(refused.status, 429, refused.body.toString());
      assert.equal(refused.headers["connection"], "close");
      assert.match(
        errorOf(refused),
        new RegExp(
          `^Request bodies would exceed their memory budget of ${budget} bytes \\(\\d+ held, this one needs \\d+ more\\); retry later$`,
        ),
      );
      await conn.closed;
    } finally {
      conn.destroy();
    }
    await held.finish();
    assert.equal((await send(body)).status, 200);
  });
});
