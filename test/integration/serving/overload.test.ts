// Overload and shutdown against the real server process: a full queue answers 429 with Retry-After
// before reading the body, memory stays bounded, and SIGTERM under load loses no accepted request.
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import { Agent } from "node:http";
import { connect } from "node:net";
import { waitUntil } from "../../testbed/proc.ts";
import { copyHumanModel, nest, seededFloats, tempDir } from "./fixtures.ts";
import { metricValue, rawRequest, startServing, type ServingProcess } from "./harness.ts";

/** Peak and current resident memory of a process, in bytes (Linux /proc). */
async function memoryOf(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number =>
    Number(/\d+/.exec(status.split("\n").find((l) => l.startsWith(key)) ?? "0")![0]) * 1024;
  return { peak: kb("VmHWM:"), now: kb("VmRSS:") };
}

describe("maas-serving under overload", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ServingProcess;
  // antispoof takes 128×128×3 images: ~0.5 MB of JSON per request and ~5 ms of inference per row.
  const body = JSON.stringify({ instances: [nest(seededFloats(3, 128 * 128 * 3), [128, 128, 3])] });
  before(async () => {
    dir = await copyHumanModel("antispoof", await tempDir("overload"));
    server = await startServing(dir, {
      MAAS_WORKERS: "1",
      MAAS_MAX_QUEUE: "8",
      MAAS_MAX_BATCH_SIZE: "4",
      MAAS_SERVED_NAME: "antispoof",
      // All 300 clients share one address; this test is about the queue, not about fairness between clients.
      MAAS_MAX_BODIES_PER_CLIENT: "0",
      // A JS heap sized like a memory-limited pod's (Node sizes its heap from the cgroup limit), not
      // like this 24 GiB machine's, so the peak measures what the server holds rather than how
      // lazily V8 collects garbage when memory looks plentiful.
      NODE_OPTIONS: "--max-old-space-size=128",
    });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers excess requests with 429 and Retry-After and keeps peak memory far below what was sent", async () => {
    const url = `${server.url}/v1/models/antispoof:predict`;
    // Warm up at full batches first: wasm memory grows to the largest batch once and stays there.
    const warm = await Promise.all(Array.from({ length: 8 }, () => rawRequest(url, { method: "POST", body })));
    assert.ok(warm.every((r) => r.status === 200));
    const base = await memoryOf(server.child.pid!);
    const results: { status: number; ms: number; retryAfter: unknown }[] = [];
    const waves = 4;
    const perWave = 300;
    for (let w = 0; w < waves; w++) {
      const agent = new Agent({ keepAlive: true, maxSockets: perWave });
      const wave = await Promise.all(
        Array.from({ length: perWave }, async () => {
          const t0 = performance.now();
          let headersAt = 0;
          const res = await rawRequest(url, {
            method: "POST",
            body,
            agent,
            onResponse: () => (headersAt = performance.now()),
          });
          return {
            status: res.status,
            ms: headersAt - t0,
            retryAfter: res.headers["retry-after"],
            error: res.status === 200 ? "" : res.body.toString(),
          };
        }),
      );
      agent.destroy();
      results.push(...wave);
      for (const r of wave) {
        if (r.status === 429) assert.match(r.error, /request queue is full \(8 requests waiting\)/);
      }
    }
    const after = await memoryOf(server.child.pid!);
    const ok = results.filter((r) => r.status === 200);
    const rejected = results.filter((r) => r.status === 429);
    assert.equal(
      ok.length + rejected.length,
      results.length,
      `only 200 and 429: ${[...new Set(results.map((r) => r.status))].join(",")}`,
    );
    // How many are refused depends on how fast 300 clients' headers reach the server (3 in 4 runs
    // here refuse over 80%; a slow client side spreads them out); that the queue bound holds is
    // shown exactly by the admission test below.
    assert.ok(rejected.length > 0, `the queue filled and refused requests (${rejected.length}/${results.length})`);
    assert.ok(ok.length >= waves * 9, `the queue and the worker were used (${ok.length} served)`);
    assert.ok(rejected.every((r) => r.retryAfter === "1"));
    const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const median429 = median(rejected.map((r) => r.ms));
    const median200 = median(ok.map((r) => r.ms));
    // 1,200 requests carry ~1.1 GB of JSON. With at most 8 admitted at a time the server holds a few
    // MB of live data; the peak moves by garbage not yet collected: 105–220 MB over a dozen runs
    // here. The same test with an unbounded queue (MAAS_MAX_QUEUE=1000) grew by 590–700 MB, so the
    // bound separates the two with a wide margin either side.
    const growth = after.peak - base.peak;
    assert.ok(
      growth < 350 * 1024 * 1024,
      `peak RSS grew by ${(growth / 1048576).toFixed(1)} MB (from ${(base.peak / 1048576).toFixed(0)} MB)`,
    );
    const sent = (results.length * body.length) / 1048576;
    console.log(
      `      overload: ${results.length} requests (${sent.toFixed(0)} MB), ${ok.length} served, ${rejected.length} × 429; ` +
        `time to headers: median 429 ${median429.toFixed(1)} ms vs 200 ${median200.toFixed(1)} ms; ` +
        `peak RSS ${(base.peak / 1048576).toFixed(0)} → ${(after.peak / 1048576).toFixed(0)} MB, now ${(after.now / 1048576).toFixed(0)} MB`,
    );
  });
});

describe("maas-serving admission", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("admission"));
    server = await startServing(dir, { MAAS_MAX_QUEUE: "3" });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a request with 429 from its headers alone while queue slots are held, and frees the slots when those clients vanish", async () => {
    const port = Number(new URL(server.url).port);
    const head = (length: number): string =>
      `POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    // Three clients (each from its own address) start bodies they never finish: each holds a queue
    // slot while its body is read.
    const holders = await Promise.all(
      ["127.0.0.2", "127.0.0.3", "127.0.0.4"].map(async (localAddress) => {
        const s = connect({ port, host: "127.0.0.1", localAddress });
        await once(s, "connect");
        s.write(head(100_000) + '{"instances": [');
        return s;
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
    // The fourth sends only headers: a response proves the server did not need the body to refuse it.
    const probe = connect(port, "127.0.0.1");
    let answer = "";
    probe.on("data", (d: Buffer) => (answer += d.toString()));
    probe.write(head(5_000_000));
    while (!answer.includes("\r\n\r\n{")) await once(probe, "data");
    assert.match(answer, /^HTTP\/1\.1 429/);
    assert.match(answer, /retry-after: 1/i);
    assert.match(answer, /The request queue is full \(3 requests waiting\); retry later/);
    probe.destroy();
    for (const s of holders) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const ok = await Promise.all(
      Array.from({ length: 3 }, () =>
        rawRequest(`${server.url}/v1/models/model:predict`, {
          method: "POST",
          body: JSON.stringify({ instances: [nest(seededFloats(1, 3072), [32, 32, 3])] }),
        }),
      ),
    );
    assert.deepEqual(
      ok.map((r) => r.status),
      [200, 200, 200],
    );
  });
});

describe("maas-serving on SIGTERM under load", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("shutdown"));
    // One worker and a 5 ms batch delay keep a queue standing, so there is something to drain.
    server = await startServing(dir, {
      MAAS_WORKERS: "1",
      MAAS_MAX_BATCH_DELAY_MS: "5",
      MAAS_MAX_BATCH_SIZE: "8",
      MAAS_MAX_QUEUE: "512",
    });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers every request sent before SIGTERM with 200 and exits 0", async () => {
    const url = `${server.url}/v1/models/model:predict`;
    const body = JSON.stringify({ instances: [nest(seededFloats(9, 32 * 32 * 3), [32, 32, 3])] });
    const agent = new Agent({ keepAlive: true, maxSockets: 48 });
    let sigtermAt = Infinity;
    const outcomes: { started: number; ended: number; status: number | string }[] = [];
    const client = async (): Promise<void> => {
      for (;;) {
        const started = performance.now();
        try {
          const res = await rawRequest(url, { method: "POST", body, agent });
          outcomes.push({ started, ended: performance.now(), status: res.status });
        } catch (err) {
          outcomes.push({
            started,
            ended: performance.now(),
            status: (err as NodeJS.ErrnoException).code ?? String(err),
          });
          return;
        }
        if (started > sigtermAt) return;
      }
    };
    const clients = Array.from({ length: 48 }, () => client());
    await new Promise((r) => setTimeout(r, 1000));
    sigtermAt = performance.now();
    const exit = server.stop("SIGTERM");
    await Promise.all(clients);
    agent.destroy();
    assert.equal(await exit, 0);
    const before = outcomes.filter((o) => o.started < sigtermAt);
    const inFlight = before.filter((o) => o.ended > sigtermAt);
    const lost = before.filter((o) => o.status !== 200);
    assert.deepEqual(lost, [], "requests sent before SIGTERM that did not get 200");
    assert.ok(inFlight.length >= 10, `requests were in flight at SIGTERM (${inFlight.length})`);
    // After SIGTERM: refused connections or an explicit 503, never a 500 or a half-answered request.
    const afterwards = outcomes.filter((o) => o.started >= sigtermAt).map((o) => o.status);
    for (const s of afterwards)
      assert.ok([200, 503, "ECONNREFUSED", "ECONNRESET"].includes(s), `unexpected outcome after SIGTERM: ${s}`);
    console.log(
      `      shutdown: ${before.length} requests before SIGTERM (${inFlight.length} in flight) all 200; after: ${JSON.stringify(Object.fromEntries([...new Set(afterwards)].map((s) => [s, afterwards.filter((x) => x === s).length])))}`,
    );
  });
});

describe("maas-serving on SIGTERM with a shutdown delay (as the operator runs it)", function () {
  this.timeout(60_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("shutdown-delay"));
    server = await startServing(dir, { MAAS_SHUTDOWN_DELAY_MS: "3000" });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("reports not ready but keeps answering while endpoints update, then drains and exits 0", async () => {
    const body = JSON.stringify({ instances: [nest(seededFloats(4, 32 * 32 * 3), [32, 32, 3])] });
    const exit = server.stop("SIGTERM");
    const said = (msg: string) => server.logs.some((l) => (l as { msg?: string }).msg === msg);
    await waitUntil(
      "the shutdown to begin",
      () => Promise.resolve(said("Shutting down: not ready, still serving")),
      2_000,
    );
    assert.ok(said("Shutting down: not ready, still serving"), JSON.stringify(server.logs));
    const ready = await rawRequest(`${server.url}/v2/health/ready`);
    assert.equal(ready.status, 503, "not ready, so the kubelet takes the pod out of the endpoints");
    const predict = await rawRequest(`${server.url}/v1/models/model:predict`, { method: "POST", body });
    assert.equal(predict.status, 200, "a request still routed here is served, not refused");
    assert.equal(predict.headers["connection"], "close", "and its client is asked to reconnect elsewhere");
    assert.ok(!said("Draining: stopped accepting connections"), "the delay covered both requests");
    assert.equal(await exit, 0);
  });
});

describe("maas-serving with clients that give up while queued", function () {
  this.timeout(120_000);
  let dir: string;
  let server: ServingProcess;
  before(async () => {
    dir = await copyHumanModel("liveness", await tempDir("give-up"));
    server = await startServing(dir, { MAAS_WORKERS: "1", MAAS_MAX_QUEUE: "4", MAAS_MAX_BATCH_SIZE: "1" });
    await server.waitReady();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("gives their queue slots back, never runs their requests, and counts them as 499", async () => {
    const url = `${server.url}/v1/models/model:predict`;
    const metric = async (name: string, labels: Record<string, string> = {}) =>
      (await metricValue(server.metricsUrl, name, labels)) ?? 0;
    const until = (what: string, check: () => Promise<boolean>) => waitUntil(what, check, 30_000);
    const batchesBefore = await metric("maas_batch_size_count");
    // A big request keeps the single worker busy for a while.
    const row = nest(new Array<number>(3072).fill(0), [32, 32, 3]);
    const big = rawRequest(url, { method: "POST", body: JSON.stringify({ instances: Array(2000).fill(row) }) });
    await until("the big batch to start", async () => (await metric("maas_batch_size_count")) > batchesBefore);
    // Four clients fill the queue behind it, then give up.
    const small = JSON.stringify({ instances: [row] });
    const port = Number(new URL(server.url).port);
    const quitters = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const s = connect(port, "127.0.0.1");
        await once(s, "connect");
        s.write(
          `POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${small.length}\r\n\r\n${small}`,
        );
        return s;
      }),
    );
    await until("four queued requests", async () => (await metric("maas_queue_depth")) === 4);
    for (const s of quitters) s.destroy();
    await until("the queue to empty", async () => (await metric("maas_queue_depth")) === 0);
    // Their slots are free again: a new request is queued, not refused.
    const next = await rawRequest(url, { method: "POST", body: small });
    assert.equal(next.status, 200, next.body.toString());
    assert.equal((await big).status, 200);
    assert.equal(await metric("maas_batch_size_count"), batchesBefore + 2, "only the big and the last request ran");
    assert.equal(await metric("maas_requests_total", { code: "499" }), 4);
  });
});
