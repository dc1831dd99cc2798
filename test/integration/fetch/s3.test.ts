import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { expectedDigest, makeModel, readTree, runFetchProcess, scratch, type TestModel } from "./harness.ts";
import { freePort } from "../../testbed/proc.ts";

// A real S3-compatible server from PyPI: `pip install 'moto[server]'`. MAAS_TEST_PYTHON picks the interpreter.
const python = process.env["MAAS_TEST_PYTHON"] ?? "python3";
const accessKeyId = "AKIAFETCHTEST0000001";
const secretAccessKey = "fetch-test-secret-key-do-not-log";

describe("fetch from S3 (real child process against moto_server)", function () {
  this.timeout(60_000);
  let moto: ChildProcess | undefined;
  let motoLog = "";
  let endpoint = "";
  let client: S3Client;
  let work = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();

  before(async function () {
    const port = await freePort();
    endpoint = `http://127.0.0.1:${port}`;
    const child = spawn(python, ["-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    moto = child;
    child.stdout.setEncoding("utf8").on("data", (d: string) => (motoLog += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (motoLog += d));
    let exited = false;
    child.on("exit", () => (exited = true));
    child.on("error", (err) => {
      motoLog += String(err);
      exited = true;
    });
    for (let i = 0; ; i++) {
      if (exited) assert.fail(`moto server did not start (pip install 'moto[server]'): ${motoLog}`);
      const up = await fetch(`${endpoint}/moto-api/`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 300) assert.fail(`moto server not reachable at ${endpoint} after 30 s: ${motoLog}`);
      await sleep(100);
    }
    client = new S3Client({
      region: "us-east-1",
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
    });
    await client.send(new CreateBucketCommand({ Bucket: "models" }));
  });

  after(async () => {
    client.destroy();
    if (moto !== undefined && moto.exitCode === null) {
      const gone = new Promise((res) => moto!.once("exit", res));
      moto.kill("SIGTERM");
      await gone;
    }
  });

  beforeEach(async () => {
    ({ dir: work, cleanup } = await scratch());
  });
  afterEach(() => cleanup());

  const target = (): string => join(work, "models", "model");
  const s3Env = (uri: string): Record<string, string> => ({
    MAAS_MODEL_URI: uri,
    MAAS_MODEL_DIR: target(),
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    MAAS_FETCH_BACKOFF_MS: "20",
  });

  async function upload(prefix: string, model: TestModel): Promise<void> {
    for (const [p, data] of model.files) {
      await client.send(new PutObjectCommand({ Bucket: "models", Key: `${prefix}/${p}`, Body: data }));
    }
  }

  it("downloads model.json and its shards from a bucket prefix, verifies the sha256, and never logs the secret key", async () => {
    const model = makeModel(3, 200_000, "w/");
    await upload("sentiment/3", model);
    const run = await runFetchProcess(
      { ...s3Env("s3://models/sentiment/3/model.json"), MAAS_MODEL_SHA256: expectedDigest(model.files) },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
    assert.ok(!run.stderr.includes(secretAccessKey));
    assert.match(motoLog, /GET \/models\/sentiment\/3\/w\/group1-shard3of3\.bin/);
  });

  it("fails at once on a missing key with the S3 error name, without retrying", async () => {
    const before = motoLog.split("/models/absent/model.json").length;
    const run = await runFetchProcess({ ...s3Env("s3://models/absent/model.json"), MAAS_FETCH_RETRIES: "3" }, work);
    assert.equal(run.code, 1);
    assert.equal(run.message, "model fetch failed: GET s3://models/absent/model.json returned 404 NoSuchKey\n");
    assert.equal(motoLog.split("/models/absent/model.json").length - before, 1, "one request, no retries");
  });

  it("fails on a missing bucket with NoSuchBucket", async () => {
    const run = await runFetchProcess(s3Env("s3://no-such-bucket/m/model.json"), work);
    assert.equal(run.code, 1);
    assert.equal(run.message, "model fetch failed: GET s3://no-such-bucket/m/model.json returned 404 NoSuchBucket\n");
  });

  it("rejects a mismatching sha256 and leaves no model", async () => {
    const model = makeModel(1, 1000);
    await upload("mismatch", model);
    const run = await runFetchProcess(
      { ...s3Env("s3://models/mismatch/model.json"), MAAS_MODEL_SHA256: "0".repeat(64) },
      work,
    );
    assert.equal(run.code, 1);
    assert.match(
      run.message ?? "",
      /^model fetch failed: sha256 mismatch: expected 0{64}, got [0-9a-f]{64} \(over 2 files\)\n$/,
    );
    await assert.rejects(readTree(target()));
  });

  it("retries an unreachable endpoint and reports the connection error", async () => {
    const closed = await freePort();
    const run = await runFetchProcess(
      {
        ...s3Env("s3://models/x/model.json"),
        AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closed}`,
        MAAS_FETCH_RETRIES: "1",
      },
      work,
    );
    assert.equal(run.code, 1);
    assert.match(run.message ?? "", /^model fetch failed: GET s3:\/\/models\/x\/model\.json: .*ECONNREFUSED/);
    assert.equal(run.stderr.match(/"msg":"retrying"/g)?.length, 1);
    assert.ok(!run.stderr.includes(secretAccessKey) && !(run.message ?? "").includes(secretAccessKey));
  });
});
