// Slow senders against the real server process over real sockets: a body that does not start, stalls,
// or trickles too slowly to make its deadline gets 408 and a closed connection long before the body
// deadline, and slow senders from a few addresses cannot hold the whole queue.
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { waitUntil } from "../../testbed/proc.ts";
import { copyHumanModel, nest, seededFloats, tempDir } from "./fixtures.ts";
import { RawConnection, metricValue, startServing, type RawResponse, type ServingProcess } from "./harness.ts";

const predict = "/v1/models/model:predict";
const body = JSON.stringify({ instances: [nest(seededFloats(13, 32 * 32 * 3), [32, 32, 3])] });
const json = { "content-type": "application/json" };
const head = (length: number): string => RawConnection.head(predict, { ...json, "content-length": length });
const errorOf = (res: RawResponse): string => (JSON.parse(res.body.toString()) as { error: string }).error;

describe("maas-serving with slow senders", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("slow-senders"));
    // A body deadline these tests never reach: each slow sender is cut off well before it. The idle
    // timeout is twenty times the trickling sender's pause, so a busy machine cannot make it stall.
    server = await startServing(dir, { MAAS_BODY_IDLE_TIMEOUT_MS: "2000", MAAS_BODY_TIMEOUT_MS: "20000" });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Sends `start` (then `trickle` every 100 ms, if given) and returns the error of the 408 it earns,
   * having checked that the connection is closed, as the response says.
   */
  async function timedOut(start: string, trickle?: string): Promise<string> {
    const conn = await RawConnection.open(server.url);
    try {
      conn.write(start);
      const trickling = (async () => {
        while (trickle !== undefined && !conn.isClosed) {
          conn.write(trickle);
          await sleep(100);
        }
      })();
      const res = await conn.response();
      assert.equal(res.status, 408, res.body.toString());
      assert.equal(res.headers["connection"], "close");
      await conn.closed;
      await trickling;
      return errorOf(res);
    } finally {
      conn.destroy();
    }
  }

  it("answers a body that never starts with 408 once the idle timeout has passed, and closes the connection", async () => {
    assert.equal(
      await timedOut(head(1000)),
      "Request body did not start within 2000 ms of its headers (got 0 of 1000 bytes)",
    );
  });

  it("answers a body that stalls midway with 408 once the idle timeout has passed", async () => {
    assert.equal(
      await timedOut(head(1000) + "x".repeat(100)),
      "Request body stalled for 2000 ms (got 100 of 1000 bytes)",
    );
  });

  it("answers a body that keeps trickling, too slowly to arrive by its deadline, with 408 long before the deadline", async () => {
    // 10 bytes every 100 ms never stalls, but 100 kB at that pace would take over 16 minutes.
    assert.match(
      await timedOut(head(100_000), "x".repeat(10)),
      /^Request body is arriving too slowly to finish within 20000 ms \(got \d+ of 100000 bytes in \d+ ms\)$/,
    );
  });
});

describe("maas-serving with slow senders from a few addresses", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("slow-addresses"));
    // Eight queue slots: once four are taken, one client address may send one body at a time (an
    // eighth). Deadlines long enough that the slow senders stay for the whole test.
    server = await startServing(dir, {
      MAAS_MAX_QUEUE: "8",
      MAAS_BODY_IDLE_TIMEOUT_MS: "20000",
      MAAS_BODY_TIMEOUT_MS: "20000",
    });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("lets slow senders from one address take at most half the queue, and each other address its share, leaving room for everyone else", async () => {
    const open: RawConnection[] = [];
    const slowBody = async (address: string, expectInflight: number) => {
      const c = await RawConnection.open(server.url, address);
      open.push(c);
      c.write(head(body.length) + body.slice(0, 100));
      await waitUntil(
        `a body from ${address} to be admitted`,
        async () => (await metricValue(server.metricsUrl, "maas_inflight_requests")) === expectInflight,
        10_000,
      );
    };
    const refused = async (address: string, message: string) => {
      const c = await RawConnection.open(server.url, address);
      open.push(c);
      c.write(head(body.length) + body.slice(0, 100));
      const r = await c.response();
      assert.equal(r.status, 429, r.body.toString());
      assert.equal(r.headers["retry-after"], "1");
      assert.equal(r.headers["connection"], "close");
      assert.equal(errorOf(r), message);
    };
    try {
      // One address: not limited while half the queue is free, refused once it holds half.
      for (let i = 1; i <= 4; i++) await slowBody("127.0.0.2", i);
      await refused(
        "127.0.0.2",
        "Client ::ffff:127.0.0.2 is already sending 4 request bodies while the queue is half full (4 of 8); one client address may then send 1 at once; retry later",
      );
      // Other addresses: one body each now.
      await slowBody("127.0.0.3", 5);
      await refused(
        "127.0.0.3",
        "Client ::ffff:127.0.0.3 is already sending 1 request body while the queue is half full (5 of 8); one client address may then send 1 at once; retry later",
      );
      await slowBody("127.0.0.4", 6);
      await slowBody("127.0.0.5", 7);
      // Seven of the eight slots are held by slow senders; a client that sends its body at once gets the last.
      const client = await RawConnection.open(server.url, "127.0.0.6");
      open.push(client);
      client.write(head(body.length) + body);
      const served = await client.response();
      assert.equal(served.status, 200, served.body.toString());
    } finally {
      for (const c of open) c.destroy();
    }
  });
});
