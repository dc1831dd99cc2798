import assert from "node:assert/strict";
import { parseFetchConfig, secretValues } from "../../../serving-image/src/fetch/config.ts";
import { canonicalManifest, isSha256Hex, manifestDigest } from "../../../serving-image/src/fetch/digest.ts";
import { FetchError } from "../../../serving-image/src/fetch/errors.ts";
import { failureLine, failurePrefix } from "../../../serving-image/src/fetch/index.ts";
import { maxWeightFiles, weightPaths } from "../../../serving-image/src/fetch/manifest.ts";
import { backoffDelayMs, maxBackoffMs, parseRetryAfter } from "../../../serving-image/src/fetch/retry.ts";
import { isRetryableStatus } from "../../../serving-image/src/fetch/sources.ts";
import { hint, leftoverPrefixes } from "../../../serving-image/src/fetch/stage.ts";
import { describeNetworkError } from "../../../serving-image/src/fetch/errors.ts";
import { ByteBudget, asFetchError } from "../../../serving-image/src/fetch/transfer.ts";
import { Defaults, Paths } from "../../../serving-image/src/contract.ts";

describe("fetch: weight paths from model.json", function () {
  it("lists the distinct shard paths of every weights group in manifest order", () => {
    const json = JSON.stringify({
      modelTopology: {},
      weightsManifest: [
        { paths: ["g1-1.bin", "g1-2.bin"], weights: [] },
        { paths: ["g2-1.bin", "g1-1.bin"], weights: [] },
      ],
    });
    assert.deepEqual(weightPaths(json), ["g1-1.bin", "g1-2.bin", "g2-1.bin"]);
  });

  it("accepts a model without weights", () => {
    assert.deepEqual(weightPaths(JSON.stringify({ modelTopology: {} })), []);
  });

  const bad: [string, string, RegExp][] = [
    ["invalid JSON", "{", /model\.json is not valid JSON/],
    ["a JSON array", "[]", /must be a JSON object/],
    ["no topology and no manifest", "{}", /is not a TF\.js model/],
    ["a manifest that is not an array", '{"weightsManifest":{}}', /weightsManifest must be an array/],
    ["a group without paths", '{"weightsManifest":[{"weights":[]}]}', /weightsManifest\[0\]\.paths must be an array/],
    ["a path that is a number", '{"weightsManifest":[{"paths":[1]}]}', /paths\[0\] must be a string/],
    [
      "a path escaping the directory",
      '{"weightsManifest":[{"paths":["../x"]}]}',
      /must stay inside the model directory/,
    ],
    ["a path naming model.json", '{"weightsManifest":[{"paths":["model.json"]}]}', /must not be model\.json/],
  ];
  for (const [name, json, message] of bad) {
    it(`rejects ${name}`, () => {
      assert.throws(() => weightPaths(json), message);
    });
  }

  it("rejects a manifest with more weight files than the bound", () => {
    const paths = Array.from({ length: maxWeightFiles + 1 }, (_, i) => `s${i}.bin`);
    assert.throws(() => weightPaths(JSON.stringify({ weightsManifest: [{ paths }] })), /at most 10000 are accepted/);
  });
});

describe("fetch: the model digest", function () {
  const a = { path: "model.json", sha256: "1".repeat(64) };
  const b = { path: "group1-shard1of1.bin", sha256: "2".repeat(64) };
  const c = { path: "Z/upper.bin", sha256: "3".repeat(64) };

  it("is sha256sum-formatted lines sorted by path bytes", () => {
    assert.equal(
      canonicalManifest([a, b, c]),
      `${c.sha256}  Z/upper.bin\n${b.sha256}  group1-shard1of1.bin\n${a.sha256}  model.json\n`,
    );
  });

  it("does not depend on the order files were listed in", () => {
    assert.equal(manifestDigest([a, b, c]), manifestDigest([c, a, b]));
  });

  it("changes when a file's name or content changes", () => {
    const base = manifestDigest([a, b]);
    assert.notEqual(manifestDigest([a, { ...b, path: "group1-shard1of2.bin" }]), base);
    assert.notEqual(manifestDigest([a, { ...b, sha256: "4".repeat(64) }]), base);
    assert.notEqual(manifestDigest([a]), base);
  });

  it("equals the sha256 of the canonical manifest text (the value `sha256sum … | sha256sum` prints)", () => {
    // sha256 of the text "<64×'1'>  model.json\n", computed with coreutils.
    assert.equal(manifestDigest([a]), "e2446879b8dbaa48e0dde5b6ad0a103bfeae377c33b70a04d63b98aee943da99");
  });

  for (const [s, ok] of [
    ["a".repeat(64), true],
    ["A".repeat(64), true],
    ["a".repeat(63), false],
    ["g".repeat(64), false],
  ] as const) {
    it(`${ok ? "accepts" : "rejects"} ${s.slice(0, 3)}… of length ${s.length} as a sha256`, () => {
      assert.equal(isSha256Hex(s), ok);
    });
  }
});

describe("fetch: retries", function () {
  it("doubles the backoff per retry with equal jitter and caps it", () => {
    assert.equal(
      backoffDelayMs(0, 500, undefined, () => 0),
      250,
    );
    assert.equal(
      backoffDelayMs(0, 500, undefined, () => 1),
      500,
    );
    assert.equal(
      backoffDelayMs(3, 500, undefined, () => 1),
      4000,
    );
    assert.equal(
      backoffDelayMs(20, 500, undefined, () => 1),
      maxBackoffMs,
    );
  });

  it("waits at least as long as Retry-After asks, within the cap", () => {
    assert.equal(
      backoffDelayMs(0, 100, 5000, () => 0),
      5000,
    );
    assert.equal(
      backoffDelayMs(0, 100, 10 * 60_000, () => 0),
      maxBackoffMs,
    );
  });

  it("parses Retry-After as seconds or an HTTP date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    assert.equal(parseRetryAfter("3", now), 3000);
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:10 GMT", now), 10_000);
    assert.equal(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  for (const [status, retry] of [
    [500, true],
    [502, true],
    [503, true],
    [408, true],
    [429, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
  ] as const) {
    it(`${retry ? "retries" : "does not retry"} HTTP ${status}`, () => {
      assert.equal(isRetryableStatus(status), retry);
    });
  }

  it("treats unknown low-level errors as retryable network failures and names their errno", () => {
    const err = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" }),
    });
    const fe = asFetchError(err, "GET http://h/m.json");
    assert.equal(fe.retryable, true);
    assert.equal(fe.message, "GET http://h/m.json: connect ECONNREFUSED 127.0.0.1:9");
    assert.equal(
      describeNetworkError(new TypeError("terminated", { cause: new Error("other side closed") })),
      "connection closed before the body was complete: other side closed",
    );
  });

  it("passes FetchErrors through unchanged", () => {
    const fe = new FetchError("x returned 404 Not Found");
    assert.equal(asFetchError(fe, "y"), fe);
  });
});

describe("fetch: the byte budget", function () {
  it("refuses bytes beyond the limit with a message naming the limit and the object", () => {
    const b = new ByteBudget(10);
    b.take(6, "a");
    assert.throws(() => {
      b.take(5, "GET http://h/b.bin");
    }, /larger than the limit of 10 bytes \(MAAS_FETCH_MAX_BYTES\) while reading GET http:\/\/h\/b\.bin/);
    b.release(6);
    b.take(10, "c");
    assert.equal(b.used, 10);
  });
});

describe("fetch: configuration from the environment", function () {
  it("applies the contract's defaults", () => {
    const c = parseFetchConfig({ MAAS_MODEL_URI: "https://h/m/model.json" });
    assert.equal(c.targetDir, Paths.fetchedModelDir);
    assert.equal(c.sourceDir, Paths.modelSourceDir);
    assert.equal(c.terminationMessagePath, Paths.terminationMessage);
    assert.equal(c.maxBytes, Defaults.fetchMaxBytes);
    assert.equal(c.retries, Defaults.fetchRetries);
    assert.equal(c.sha256, undefined);
  });

  it("reads every setting and normalises the sha256 to lowercase", () => {
    const c = parseFetchConfig({
      MAAS_MODEL_URI: "s3://bkt/k/model.json",
      MAAS_MODEL_DIR: "/models/m/",
      MAAS_MODEL_SHA256: "AB".repeat(32),
      MAAS_FETCH_MAX_BYTES: "1000",
      MAAS_FETCH_TIMEOUT_MS: "50",
      MAAS_FETCH_DEADLINE_MS: "900",
      MAAS_FETCH_RETRIES: "0",
      MAAS_FETCH_BACKOFF_MS: "0",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000",
      AWS_REGION: "eu-west-1",
    });
    assert.equal(c.targetDir, "/models/m");
    assert.equal(c.sha256, "ab".repeat(32));
    assert.deepEqual([c.maxBytes, c.timeoutMs, c.deadlineMs, c.retries, c.backoffMs], [1000, 50, 900, 0, 0]);
    assert.equal(c.s3.endpoint, "http://127.0.0.1:9000");
    assert.equal(c.s3.region, "eu-west-1");
  });

  const bad: [Record<string, string>, RegExp][] = [
    [{}, /MAAS_MODEL_URI is not set/],
    [{ MAAS_MODEL_URI: "https://h/model.json", MAAS_MODEL_DIR: "models" }, /MAAS_MODEL_DIR must be an absolute path/],
    [{ MAAS_MODEL_URI: "https://h/model.json", MAAS_MODEL_DIR: "/" }, /must not be the root directory/],
    [
      { MAAS_MODEL_URI: "https://h/model.json", MAAS_MODEL_SOURCE_DIR: "x" },
      /MAAS_MODEL_SOURCE_DIR must be an absolute path/,
    ],
    [
      { MAAS_MODEL_URI: "https://h/model.json", MAAS_FETCH_RETRIES: "-1" },
      /MAAS_FETCH_RETRIES must be a whole number, got "-1"/,
    ],
    [
      { MAAS_MODEL_URI: "https://h/model.json", MAAS_FETCH_RETRIES: "101" },
      /MAAS_FETCH_RETRIES must be between 0 and 100, got 101/,
    ],
    [
      { MAAS_MODEL_URI: "https://h/model.json", MAAS_FETCH_MAX_BYTES: "0" },
      /MAAS_FETCH_MAX_BYTES must be between 1 and/,
    ],
    [
      { MAAS_MODEL_URI: "https://h/model.json", MAAS_MODEL_SHA256: "xyz" },
      /MAAS_MODEL_SHA256 must be 64 hex characters/,
    ],
  ];
  for (const [env, message] of bad) {
    it(`rejects ${JSON.stringify(env)} naming the variable`, () => {
      assert.throws(() => parseFetchConfig(env), message);
    });
  }

  it("collects the secret values to scrub, including the credential part of an Authorization header", () => {
    assert.deepEqual(
      secretValues({ MAAS_HTTP_AUTHORIZATION: "Bearer abc123", AWS_SECRET_ACCESS_KEY: "k" }).sort(),
      ["Bearer abc123", "abc123", "k"].sort(),
    );
  });
});

describe("fetch: the termination message", function () {
  it("is one prefixed line with secrets scrubbed and URLs redacted", () => {
    const line = failureLine(new FetchError("GET https://u:pw@h/m.json?sig=zz failed\nwith token tok-123456"), [
      "tok-123456",
    ]);
    assert.equal(line, `${failurePrefix}GET https://***@h/m.json?sig=*** failed with token ***`);
  });

  it("marks errors that are not FetchErrors as internal", () => {
    assert.equal(failureLine(new RangeError("boom"), []), `${failurePrefix}internal error: boom`);
  });

  it("stays within the 4096 bytes Kubernetes keeps", () => {
    const line = failureLine(new FetchError("é".repeat(5000)), []);
    assert.ok(Buffer.byteLength(line) <= 4000);
    assert.ok(line.endsWith("..."));
  });
});

describe("fetch: staging names and target hints", function () {
  it("derives the leftover prefixes from the target's name", () => {
    assert.deepEqual(leftoverPrefixes("/models/model"), [".model.partial-", ".model.old-"]);
  });

  for (const code of ["EBUSY", "EXDEV", "EROFS", "EACCES"]) {
    it(`tells the user to move MAAS_MODEL_DIR inside the volume on ${code}`, () => {
      const err = hint(
        new FetchError("rename the staged model to /models: EBUSY", {
          cause: Object.assign(new Error(code), { code }),
        }),
      );
      assert.match(
        err.message,
        /; MAAS_MODEL_DIR must be a directory inside a writable volume, not its mount point \(default \/models\/model\)$/,
      );
    });
  }

  it("leaves other errors alone", () => {
    const orig = new FetchError("x", { cause: Object.assign(new Error("ENOSPC"), { code: "ENOSPC" }) });
    assert.equal(hint(orig), orig);
  });
});
