import assert from "node:assert/strict";
import { access, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { digestDirectory } from "../../../serving-image/src/fetch/digest.ts";
import { FetchError } from "../../../serving-image/src/fetch/errors.ts";
import { LocalSource } from "../../../serving-image/src/fetch/sources.ts";
import { ByteBudget, transferOnce } from "../../../serving-image/src/fetch/transfer.ts";
import { expectedDigest, makeModel, readTree, runFetchProcess, scratch, strayEntries, writeModel } from "./harness.ts";

describe("fetch from mounted paths and bad configuration (real child process)", function () {
  let work = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();
  beforeEach(async () => {
    ({ dir: work, cleanup } = await scratch());
  });
  afterEach(() => cleanup());
  const target = (): string => join(work, "models", "model");

  it("copies a file:// model.json and the shards it lists, ignoring other files beside it", async () => {
    const model = makeModel(2, 3000);
    const src = join(work, "src");
    await writeModel(src, model);
    await writeFile(join(src, "README.txt"), "not part of the model");
    const run = await runFetchProcess({ MAAS_MODEL_URI: `file://${src}/model.json`, MAAS_MODEL_DIR: target() }, work);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("copies a whole file:// directory tree (SavedModel layout), following symlinks, and verifies its sha256", async () => {
    const src = join(work, "saved");
    const files = new Map([
      ["saved_model.pb", Buffer.from("graph")],
      ["variables/variables.index", Buffer.from("index")],
      ["variables/variables.data-00000-of-00001", Buffer.from("data")],
      ["assets/vocab.txt", Buffer.from("a\nb\n")],
    ]);
    await writeModel(src, { files });
    await mkdir(join(work, "elsewhere"));
    await writeFile(join(work, "elsewhere", "labels.txt"), "cat\ndog\n");
    await symlink(join(work, "elsewhere", "labels.txt"), join(src, "assets", "labels.txt"));
    files.set("assets/labels.txt", Buffer.from("cat\ndog\n"));
    // A lost+found at the root of a volume is no part of the model (and not readable by fetch).
    await mkdir(join(src, "lost+found"));
    await writeFile(join(src, "lost+found", "#1234"), "orphan");
    // What the digest subcommand computes on the source is what fetch verifies, links included.
    assert.equal(await digestDirectory(src), expectedDigest(files));
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `file://${src}`, MAAS_MODEL_DIR: target(), MAAS_MODEL_SHA256: expectedDigest(files) },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), files);
  });

  it("names a failure to write on our side (full disk, a file in the way) and never retries it", async () => {
    const src = join(work, "src");
    await mkdir(src);
    await writeFile(join(src, "w.bin"), Buffer.alloc(100_000, 7));
    await writeFile(join(work, "a-file"), "in the way");
    const opts = { budget: new ByteBudget(1e9), timeoutMs: 10_000, deadline: new AbortController().signal };
    const cases: [string, RegExp][] = [
      ["/dev/full", /^write \/dev\/full: no space left on device$/],
      [join(work, "a-file", "w.bin"), /^write .*\/a-file\/w\.bin: file exists$/],
    ];
    for (const [dest, message] of cases) {
      await assert.rejects(transferOnce(new LocalSource(src), "w.bin", dest, opts), (err: unknown) => {
        assert.ok(err instanceof FetchError);
        assert.match(err.message, message);
        assert.equal(err.retryable, false, dest);
        return true;
      });
    }
    assert.equal(opts.budget.used, 0, "the bytes of the failed attempts are given back");
  });

  it("reads pvc://claim/path from the directory named by MAAS_MODEL_SOURCE_DIR", async () => {
    const model = makeModel(1, 2000);
    const mount = join(work, "claim-mount");
    await writeModel(join(mount, "sentiment", "3"), model);
    const run = await runFetchProcess(
      {
        MAAS_MODEL_URI: "pvc://model-store/sentiment/3/model.json",
        MAAS_MODEL_DIR: target(),
        MAAS_MODEL_SOURCE_DIR: mount,
      },
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await readTree(target()), model.files);
  });

  it("names the missing path when a pvc:// model is not on the claim", async () => {
    const mount = join(work, "claim-mount");
    await mkdir(mount);
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: "pvc://model-store/nope/model.json", MAAS_MODEL_DIR: target(), MAAS_MODEL_SOURCE_DIR: mount },
      work,
    );
    assert.equal(run.code, 1);
    assert.equal(run.message, `model fetch failed: read ${mount}/nope/model.json: no such file or directory\n`);
    await assert.rejects(access(target()));
  });

  it("refuses a local model over the byte limit and leaves nothing behind", async () => {
    const src = join(work, "src");
    await writeModel(src, makeModel(2, 10_000));
    const run = await runFetchProcess(
      { MAAS_MODEL_URI: `file://${src}/model.json`, MAAS_MODEL_DIR: target(), MAAS_FETCH_MAX_BYTES: "15000" },
      work,
    );
    assert.equal(run.code, 1);
    assert.match(run.message ?? "", /^model fetch failed: model is larger than the limit of 15000 bytes/);
    assert.deepEqual(await strayEntries(join(work, "models"), []), []);
  });

  const badConfigs: { name: string; env: Record<string, string>; message: string }[] = [
    { name: "MAAS_MODEL_URI is unset", env: {}, message: "MAAS_MODEL_URI is not set" },
    {
      name: "the scheme is unknown",
      env: { MAAS_MODEL_URI: "ftp://host/model.json" },
      message: "model URI ftp://host/model.json: uri must start with https://, http://, s3://, pvc:// or file://",
    },
    {
      name: "the scheme is gs://",
      env: { MAAS_MODEL_URI: "gs://bucket/m/model.json" },
      message:
        "model URI gs://bucket/m/model.json: gs:// is not supported: use s3://<bucket>/<key> with " +
        "AWS_ENDPOINT_URL_S3=https://storage.googleapis.com and HMAC keys in the credentials Secret",
    },
    {
      name: "the sha256 is not 64 hex characters",
      env: { MAAS_MODEL_URI: "https://h/model.json", MAAS_MODEL_SHA256: "abc" },
      message: "MAAS_MODEL_SHA256 must be 64 hex characters, got 3 characters",
    },
    {
      name: "a limit is not a number",
      env: { MAAS_MODEL_URI: "https://h/model.json", MAAS_FETCH_MAX_BYTES: "10GB" },
      message: 'MAAS_FETCH_MAX_BYTES must be a whole number, got "10GB"',
    },
  ];
  for (const c of badConfigs) {
    it(`exits 2 with a one-line reason when ${c.name}`, async () => {
      const run = await runFetchProcess({ MAAS_MODEL_DIR: target(), ...c.env }, work);
      assert.equal(run.code, 2);
      assert.equal(run.message, `model fetch failed: ${c.message}\n`);
    });
  }

  it("prints the digest MAAS_MODEL_SHA256 expects with the digest subcommand", async () => {
    const { spawnSync } = await import("node:child_process");
    const model = makeModel(2, 500);
    await writeModel(join(work, "m"), model);
    const { cliPath } = await import("./harness.ts");
    const out = spawnSync(process.execPath, [cliPath, "digest", join(work, "m")], { encoding: "utf8" });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, `${expectedDigest(model.files)}\n`);
  });
});
