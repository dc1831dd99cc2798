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
    // Four queue slots, so one client address may send one body at a time (an eighth, at least one).
    // Deadlines long enough that the slow senders stay for the whole test.
    server = await startServing(dir, {
      MAAS_MAX_QUEUE: "4",
      MAAS_BODY_IDLE_TIMEOUT_MS: "20000",
      MAAS_BODY_TIMEOUT_MS: "20000",
    });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("lets each client address hold one slot with an unfinished body, so three slow addresses leave room for everyone else", async () => {
    const slow = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    const open: RawConnection[] = [];
    try {
      for (const [i, address] of slow.entries()) {
        const first = await RawConnection.open(server.url, address);
        open.push(first);
        first.write(head(body.length) + body.slice(0, 100));
        await waitUntil(
          `the body from ${address} to be admitted`,
          async () => (await metricValue(server.metricsUrl, "maas_inflight_requests")) === i + 1,
          10_000,
        );
        const second = await RawConnection.open(server.url, address);
        open.push(second);
        second.write(head(body.length) + body.slice(0, 100));
        const refused = await second.response();
        assert.equal(refused.status, 429, refused.body.toString());
        assert.equal(refused.headers["retry-after"], "1");
        assert.equal(refused.headers["connection"], "close");
        assert.equal(
          errorOf(refused),
          `Client ::ffff:${address} is already sending 1 request body, the most one client address may send at once; retry later`,
        );
      }
      // Three of the four slots are held by slow senders; a client that sends its body at once gets the last.
      const client = await RawConnection.open(server.url, "127.0.0.5");
      open.push(client);
      client.write(head(body.length) + body);
      const served = await client.response();
      assert.equal(served.status, 200, served.body.toString());
    } finally {
      for (const c of open) c.destroy();
    }
  });
});
