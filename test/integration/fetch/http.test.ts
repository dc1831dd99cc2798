import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { access, mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  expectedDigest,
  makeModel,
  readTree,
  runFetchProcess,
  scratch,
  strayEntries,
  writeModel,
  type TestModel,
} from "./harness.ts";
import type { AddressInfo } from "node:net";
import { freePort } from "../../testbed/proc.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server whose routes each test sets; it records every request path and auth header. */
class ModelServer {
  readonly routes = new Map<string, Handler>();
  readonly requests: { path: string; authorization: string | undefined }[] = [];
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      this.requests.push({ path, authorization: req.headers.authorization });
      const handler = this.routes.get(path);
      if (handler === undefined) {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      handler(req, res);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((res) => this.#server.listen(0, "127.0.0.1", res));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((res) =>
      this.#server.close(() => {
        res();
      }),
    );
  }

  /** Serves every file of the model under prefix, with Content-Length. */
  serveModel(prefix: string, model: TestModel): void {
    for (const [p, data] of model.files)
      this.routes.set(`${prefix}/${p}`, (_req, res) => res.writeHead(200, { "content-length": data.length }).end(data));
  }

  count(path: string): number {
    return this.requests.filter((r) => r.path === path).length;
  }
}

describe("fetch over HTTP (real child process, loopback server)", function () {
  const server = new ModelServer();
  let base = "";
  let work = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const fast = { MAAS_FETCH_BACKOFF_MS: "20", MAAS_FETCH_TIMEOUT_MS: "2000" };

  before(async () => {
    base = await server.start();
  });
  after(() => server.stop());
  beforeEach(async () => {
    ({ dir: work, cleanup } = await scratch());
    server.routes.clear();
    server.requests.length = 0;
  });
  afterEach(() => cleanup());

  const target = (): string => join(work, "models", "model");

  it("downloads model.json and every weight shard it lists into the target directory", async () => {
    const model = makeModel(3, 100_000);
    server.serveModel("/m", model);
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
    assert.equal(run.message, undefined);
    assert.deepEqual(await strayEntries(join(work, "models"), ["model"]), []);
    // The logs are JSON lines on stderr and report the digest users can pin.
    const last = JSON.parse(run.stderr.trim().split("\n").at(-1)!) as { msg: string; sha256: string };
    assert.equal(last.msg, "model ready");
    assert.equal(last.sha256, expectedDigest(model.files));
  });

  it("resolves weight paths in subdirectories relative to model.json", async () => {
    const model = makeModel(2, 1000, "weights/");
    server.serveModel("/nested/v3", model);
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/nested/v3/model.json`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("accepts a model whose sha256 matches the canonical manifest digest", async () => {
    const model = makeModel(2, 5000);
    server.serveModel("/m", model);
    const sha = expectedDigest(model.files).toUpperCase();
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_MODEL_SHA256: sha, ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("refuses a model whose sha256 does not match, names both digests, and leaves no model behind", async () => {
    const model = makeModel(2, 5000);
    server.serveModel("/m", model);
    const wrong = "ab".repeat(32);
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_MODEL_SHA256: wrong, ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(
      run.message,
      `model fetch failed: sha256 mismatch: expected ${wrong}, got ${expectedDigest(model.files)} (over 3 files)\n`,
    );
    await assert.rejects(access(target()));
    assert.deepEqual(await strayEntries(join(work, "models"), []), []);
  });

  it("fails at once on 404 without retrying and says which URL returned it", async () => {
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/missing/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_RETRIES: "4", ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, `model fetch failed: GET ${base}/missing/model.json returned 404 Not Found\n`);
    assert.equal(server.count("/missing/model.json"), 1);
  });

  it("fails when a weight shard listed in model.json is missing", async () => {
    const model = makeModel(2, 1000);
    server.serveModel("/m", model);
    server.routes.delete("/m/group1-shard2of2.bin");
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, `model fetch failed: GET ${base}/m/group1-shard2of2.bin returned 404 Not Found\n`);
    await assert.rejects(access(target()));
  });

  it("abandons shards still downloading once another shard has failed for good", async () => {
    const model = makeModel(2, 1000);
    server.serveModel("/m", model);
    server.routes.delete("/m/group1-shard1of2.bin");
    server.routes.set("/m/group1-shard2of2.bin", (_req, res) => {
      res.writeHead(200, { "content-length": 1000 });
      res.write(Buffer.alloc(10)); // and then nothing: only a client-side abort ends this request
    });
    // With a 2-minute inactivity timeout, only the fail-fast abort lets this finish within the test timeout.
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast, MAAS_FETCH_TIMEOUT_MS: "120000" },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, `model fetch failed: GET ${base}/m/group1-shard1of2.bin returned 404 Not Found\n`);
    await assert.rejects(access(target()));
  });

  it("retries 500 responses with backoff and succeeds when the server recovers", async () => {
    const model = makeModel(1, 1000);
    server.serveModel("/m", model);
    const ok = server.routes.get("/m/model.json")!;
    let calls = 0;
    server.routes.set("/m/model.json", (req, res) => {
      if (++calls <= 2) res.writeHead(500, { "content-type": "text/plain" }).end("boom");
      else ok(req, res);
    });
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_RETRIES: "3", ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(server.count("/m/model.json"), 3);
    assert.equal(run.stderr.match(/"msg":"retrying"/g)?.length, 2);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("gives up after the configured retries on a server that keeps answering 503", async () => {
    server.routes.set("/down/model.json", (_req, res) => res.writeHead(503, { "retry-after": "0" }).end());
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/down/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_RETRIES: "2", ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(server.count("/down/model.json"), 3);
    assert.equal(run.message, `model fetch failed: GET ${base}/down/model.json returned 503 Service Unavailable\n`);
  });

  it("retries a body cut off before its Content-Length and reports the truncation when it persists", async () => {
    const model = makeModel(1, 50_000);
    server.serveModel("/m", model);
    server.routes.set("/m/group1-shard1of1.bin", (_req, res) => {
      res.writeHead(200, { "content-length": 50_000 });
      res.write(Buffer.alloc(5000));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_RETRIES: "1", ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(server.count("/m/group1-shard1of1.bin"), 2);
    assert.match(
      run.message ?? "",
      new RegExp(`^model fetch failed: GET ${base}/m/group1-shard1of1\\.bin: .*(closed|terminated|ended).*\\n$`),
    );
    await assert.rejects(access(target()));
    assert.deepEqual(await strayEntries(join(work, "models"), []), []);
  });

  it("recovers from a truncated body when the next attempt is complete", async () => {
    const model = makeModel(1, 50_000);
    server.serveModel("/m", model);
    const ok = server.routes.get("/m/group1-shard1of1.bin")!;
    let calls = 0;
    server.routes.set("/m/group1-shard1of1.bin", (req, res) => {
      if (++calls > 1) {
        ok(req, res);
        return;
      }
      res.writeHead(200, { "content-length": 50_000 });
      res.write(model.files.get("group1-shard1of1.bin")!.subarray(0, 1000));
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("times out a body that stalls and names the inactivity limit", async () => {
    const model = makeModel(1, 1000);
    server.serveModel("/m", model);
    server.routes.set("/m/group1-shard1of1.bin", (_req, res) => {
      res.writeHead(200, { "content-length": 1000 });
      res.write(Buffer.alloc(10)); // ...and never the rest
    });
    const run = await runFetchProcess(
      {
        MAAS_MODEL_URI: `${base}/m/model.json`,
        MAAS_MODEL_DIR: target(),
        MAAS_FETCH_RETRIES: "1",
        MAAS_FETCH_BACKOFF_MS: "10",
        MAAS_FETCH_TIMEOUT_MS: "300",
      },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, `model fetch failed: GET ${base}/m/group1-shard1of1.bin: no data for 300 ms\n`);
    assert.equal(server.count("/m/group1-shard1of1.bin"), 2);
  });

  it("stops at the overall deadline even while retries remain", async () => {
    server.routes.set("/hang/model.json", () => undefined); // never answers
    const run = await runFetchProcess(
      {
        MAAS_MODEL_URI: `${base}/hang/model.json`,
        MAAS_MODEL_DIR: target(),
        MAAS_FETCH_RETRIES: "50",
        MAAS_FETCH_BACKOFF_MS: "10",
        MAAS_FETCH_TIMEOUT_MS: "200",
        MAAS_FETCH_DEADLINE_MS: "700",
      },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, "model fetch failed: gave up after 700 ms (MAAS_FETCH_DEADLINE_MS)\n");
  });

  const oversize = [
    { name: "announced by Content-Length", chunked: false },
    { name: "sent chunked without a length", chunked: true },
  ];
  for (const c of oversize) {
    it(`refuses a model larger than MAAS_FETCH_MAX_BYTES (${c.name}) without retrying`, async () => {
      const model = makeModel(2, 40_000);
      server.serveModel("/m", model);
      if (c.chunked) {
        for (const [p, data] of model.files)
          server.routes.set(`/m/${p}`, (_req, res) => {
            res.writeHead(200, { "content-type": "application/octet-stream" });
            res.end(data);
          });
      }
      const run = await runFetchProcess(
        { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_MAX_BYTES: "60000", ...fast },
        work,
      );
      assert.equal(run.code, 1);
      assert.match(
        run.message ?? "",
        /^model fetch failed: model is larger than the limit of 60000 bytes \(MAAS_FETCH_MAX_BYTES\).*group1-shard[12]of2\.bin/,
      );
      const shardRequests = server.requests.filter((r) => r.path.endsWith(".bin")).length;
      assert.ok(shardRequests <= 2, `oversize must not be retried, saw ${shardRequests} shard requests`);
      await assert.rejects(access(target()));
      assert.deepEqual(await strayEntries(join(work, "models"), []), []);
    });
  }

  it("sends MAAS_HTTP_AUTHORIZATION and keeps it out of logs and the termination message", async () => {
    const token = "Bearer s3cr3t-t0ken-value";
    const model = makeModel(1, 1000);
    for (const [p, data] of model.files)
      server.routes.set(`/auth/${p}`, (req, res) => {
        if (req.headers.authorization !== token) res.writeHead(401).end();
        else res.writeHead(200).end(data);
      });
    const good = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/auth/model.json`, MAAS_MODEL_DIR: target(), MAAS_HTTP_AUTHORIZATION: token, ...fast },
      work,
    );
    assert.equal(good.code, 0, good.stderr);
    assert.ok(!good.stderr.includes("s3cr3t"));
    // A failing run whose error text would otherwise echo secrets: the URI carries a signature.
    const closedPort = await freePort();
    const bad = await runFetchProcess(
      {
        MAAS_MODEL_URI: `http://127.0.0.1:${closedPort}/x/model.json?X-Amz-Signature=abcdef123`,
        MAAS_MODEL_DIR: target(),
        MAAS_HTTP_AUTHORIZATION: token,
        MAAS_FETCH_RETRIES: "0",
      },
      work,
    );
    assert.equal(bad.code, 1);
    for (const text of [bad.stderr, bad.message ?? ""]) {
      assert.ok(!text.includes("s3cr3t"), text);
      assert.ok(!text.includes("abcdef123"), text);
    }
    assert.match(
      bad.message ?? "",
      new RegExp(
        `^model fetch failed: GET http://127\\.0\\.0\\.1:${closedPort}/x/model\\.json\\?X-Amz-Signature=\\*\\*\\*: .*ECONNREFUSED`,
      ),
    );
  });

  it("fails at once, without retrying or sending anything, on an Authorization value no request can carry", async () => {
    const run = await runFetchProcess(
      {
        MAAS_MODEL_URI: `${base}/never/model.json`,
        MAAS_MODEL_DIR: target(),
        MAAS_HTTP_AUTHORIZATION: "Bearer two\nlines",
        MAAS_FETCH_RETRIES: "4",
        ...fast,
      },
      work,
    );
    assert.equal(run.code, 1);
    assert.match(run.message ?? "", /^model fetch failed: GET .*\/never\/model\.json: .*invalid header value/);
    assert.ok(!run.stderr.includes('"retrying"'), "a request that cannot be built is not retried");
    for (const text of [run.stderr, run.message ?? ""])
      assert.ok(!text.includes("lines"), `the header value leaked: ${text}`);
    assert.equal(server.count("/never/model.json"), 0);
  });

  it("follows redirects but does not send the Authorization header to another origin", async () => {
    const other = new ModelServer();
    const otherBase = await other.start();
    try {
      const model = makeModel(1, 1000);
      other.serveModel("/moved", model);
      for (const p of model.files.keys()) {
        server.routes.set(`/old/${p}`, (_req, res) =>
          res.writeHead(302, { location: `${otherBase}/moved/${p}` }).end(),
        );
      }
      const run = await runFetchProcess(
        {
          MAAS_MODEL_URI: `${base}/old/model.json`,
          MAAS_MODEL_DIR: target(),
          MAAS_HTTP_AUTHORIZATION: "Bearer only-for-origin",
          ...fast,
        },
        work,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await readTree(target()), model.files);
      assert.ok(server.requests.every((r) => r.authorization === "Bearer only-for-origin"));
      assert.deepEqual(
        other.requests.map((r) => r.authorization),
        [undefined, undefined],
      );
    } finally {
      await other.stop();
    }
  });

  it("refuses user:password in the URI before sending anything, pointing to the Secret, and never logs the password", async () => {
    // The API server refuses such a URI too (the grammar both share): credentials in a URI are visible
    // to anyone who can read the Deployment, so they belong in the Secret named by credentialsSecretRef.
    const uri = `${base.replace("http://", "http://reader:pa%20ss-w0rd@")}/basic/model.json`;
    const run = await runFetchProcess({ MAAS_MODEL_URI: uri, MAAS_MODEL_DIR: target(), ...fast }, work);
    assert.equal(run.code, 2, "a configuration error");
    assert.match(run.message ?? "", /credentials do not belong in the uri .*credentialsSecretRef/);
    for (const text of [run.stderr, run.message ?? ""]) {
      assert.ok(!text.includes("pa ss-w0rd") && !text.includes("pa%20ss-w0rd"), text);
    }
    assert.equal(server.count("/basic/model.json"), 0);
  });

  it("downloads a URI that is not a .json as a single file", async () => {
    const data = Buffer.from("not a tfjs model, just bytes");
    server.routes.set("/single/model.onnx", (_req, res) => res.writeHead(200).end(data));
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/single/model.onnx`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), new Map([["model.onnx", data]]));
  });

  it("refuses a URI whose encoded file name would leave the staging directory, before sending anything", async () => {
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/a/x%2F..%2F..%2F..%2Fescape.bin`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 2, "a configuration error");
    assert.match(run.message ?? "", /model URI .*: http\(s\) URIs name a file: .*no %2F, %5C or control characters/);
    assert.equal(server.requests.length, 0);
    assert.deepEqual(await strayEntries(work, []), []);
  });

  it("rejects a model.json whose weight paths escape the model directory", async () => {
    const json = JSON.stringify({ modelTopology: {}, weightsManifest: [{ paths: ["../../etc/passwd"], weights: [] }] });
    server.routes.set("/evil/model.json", (_req, res) => res.writeHead(200).end(json));
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `${base}/evil/model.json`, MAAS_MODEL_DIR: target(), ...fast },
      work,
    );
    assert.equal(run.code, 1);
    assert.match(
      run.message ?? "",
      /weightsManifest\[0\]\.paths\[0\]: path "\.\.\/\.\.\/etc\/passwd" must stay inside the model directory/,
    );
    assert.equal(server.requests.length, 1);
  });

  describe("the target directory only ever holds a complete model", function () {
    it("keeps the previous model intact when a new fetch fails halfway", async () => {
      const old = makeModel(2, 2000);
      await mkdir(target(), { recursive: true });
      await writeModel(target(), old);
      const fresh = makeModel(2, 2000);
      server.serveModel("/m", fresh);
      server.routes.set("/m/group1-shard2of2.bin", (_req, res) => res.writeHead(500).end());
      const run = await runFetchProcess(
        { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_RETRIES: "1", ...fast },
        work,
      );
      assert.equal(run.code, 1);
      assert.deepEqual(await readTree(target()), old.files);
      assert.deepEqual(await strayEntries(join(work, "models"), ["model"]), []);
    });

    it("replaces a previous model completely on success", async () => {
      await mkdir(target(), { recursive: true });
      await writeModel(target(), makeModel(3, 100, "old/"));
      const fresh = makeModel(1, 2000);
      server.serveModel("/m", fresh);
      const run = await runFetchProcess(
        { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast },
        work,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await readTree(target()), fresh.files);
      assert.deepEqual(await strayEntries(join(work, "models"), ["model"]), []);
    });

    it("leaves no target after being killed mid-download, and the next run cleans up and succeeds", async () => {
      const model = makeModel(2, 20_000);
      server.serveModel("/m", model);
      const ok = server.routes.get("/m/group1-shard2of2.bin")!;
      let stall = true;
      server.routes.set("/m/group1-shard2of2.bin", (req, res) => {
        if (!stall) {
          ok(req, res);
          return;
        }
        res.writeHead(200, { "content-length": 20_000 });
        res.write(Buffer.alloc(100));
      });
      const killed = await runFetchProcess(
        { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast, MAAS_FETCH_TIMEOUT_MS: "60000" },
        work,
        1500,
      );
      assert.equal(killed.signal, "SIGKILL");
      await assert.rejects(access(target()));
      const leftovers = await strayEntries(join(work, "models"), []);
      assert.equal(leftovers.length, 1, "the killed run leaves its staging directory");
      assert.match(leftovers[0]!, /^\.model\.partial-/);
      stall = false;
      const run = await runFetchProcess(
        { MAAS_MODEL_URI: `${base}/m/model.json`, MAAS_MODEL_DIR: target(), ...fast },
        work,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await readTree(target()), model.files);
      assert.deepEqual(await strayEntries(join(work, "models"), ["model"]), []);
    });

    it("skips the download when the target already holds the model with the expected sha256", async () => {
      const model = makeModel(1, 1000);
      await mkdir(target(), { recursive: true });
      await writeModel(target(), model);
      const run = await runFetchProcess(
        {
          MAAS_MODEL_URI: `${base}/m/model.json`,
          MAAS_MODEL_DIR: target(),
          MAAS_MODEL_SHA256: expectedDigest(model.files),
          ...fast,
        },
        work,
      );
      assert.equal(run.code, 0, run.stderr);
      assert.equal(server.requests.length, 0);
      assert.deepEqual(await readTree(target()), model.files);
    });
  });
});
