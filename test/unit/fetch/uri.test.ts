import assert from "node:assert/strict";
import {
  checkRelativePath,
  parseModelUri,
  redactText,
  redactUri,
  uriSecrets,
} from "../../../serving-image/src/fetch/uri.ts";

describe("fetch: model URI parsing", function () {
  const good: { uri: string; expected: unknown }[] = [
    {
      uri: "https://models.example.com/sentiment/3/model.json",
      expected: { scheme: "https", href: "https://models.example.com/sentiment/3/model.json", name: "model.json" },
    },
    {
      uri: "http://127.0.0.1:8080/m/model.json?sig=1",
      expected: { scheme: "http", href: "http://127.0.0.1:8080/m/model.json?sig=1", name: "model.json" },
    },
    {
      uri: "https://h/m/v1:model%20a.json",
      expected: { scheme: "https", href: "https://h/m/v1:model%20a.json", name: "v1:model a.json" },
    },
    {
      uri: "s3://models/sentiment/3/model.json",
      expected: { scheme: "s3", bucket: "models", key: "sentiment/3/model.json" },
    },
    { uri: "s3://my.bucket-1/model.json", expected: { scheme: "s3", bucket: "my.bucket-1", key: "model.json" } },
    { uri: "file:///srv/models/m/model.json", expected: { scheme: "file", path: "/srv/models/m/model.json" } },
    { uri: "file:///srv/models/saved%20model/", expected: { scheme: "file", path: "/srv/models/saved model" } },
    {
      uri: "pvc://model-store/sentiment/3/model.json",
      expected: { scheme: "pvc", claim: "model-store", path: "sentiment/3/model.json" },
    },
    { uri: "pvc://model-store", expected: { scheme: "pvc", claim: "model-store", path: "" } },
    { uri: "pvc://model-store/", expected: { scheme: "pvc", claim: "model-store", path: "" } },
    { uri: "pvc://model-store/dir/", expected: { scheme: "pvc", claim: "model-store", path: "dir" } },
    { uri: "pvc://model-store/a%3Ab/...", expected: { scheme: "pvc", claim: "model-store", path: "a:b/..." } },
  ];
  for (const c of good) {
    it(`accepts ${c.uri}`, () => {
      const loc = parseModelUri(c.uri);
      const shown = "url" in loc ? { scheme: loc.scheme, href: loc.url.href, name: loc.name } : loc;
      assert.deepEqual(shown, c.expected);
    });
  }

  // The messages are the grammar's (serving-image/src/grammar.ts), the same the API server gives.
  const bad: { uri: string; message: RegExp }[] = [
    { uri: "", message: /must start with https:\/\/, http:\/\/, s3:\/\/, pvc:\/\/ or file:\/\// },
    { uri: "models/model.json", message: /must start with https:\/\// },
    { uri: "ftp://h/model.json", message: /must start with https:\/\// },
    { uri: "S3://my.bucket-1/model.json", message: /must start with https:\/\// },
    {
      uri: "gs://bucket/model.json",
      message: /gs:\/\/ is not supported: .*AWS_ENDPOINT_URL_S3=https:\/\/storage\.googleapis\.com/,
    },
    { uri: " http://127.0.0.1:8080/m/model.json", message: /must start with https:\/\// },
    { uri: "http://127.0.0.1:8080/m/model.json ", message: /printable ASCII without spaces/ },
    { uri: "https://h/a\u00a0b/model.json", message: /printable ASCII without spaces/ },
    { uri: "https://h/a\\b/model.json", message: /printable ASCII without spaces or backslashes/ },
    { uri: "https://h/models/", message: /http\(s\) URIs name a file/ },
    { uri: "https://h", message: /http\(s\) URIs name a file/ },
    { uri: "https://h/a//model.json", message: /no empty, '\.' or '\.\.' segments/ },
    { uri: "https://h/a/%2e%2E/model.json", message: /no empty, '\.' or '\.\.' segments/ },
    { uri: "https://h:0/model.json", message: /:port from 1 to 65535/ },
    { uri: "https://h:65536/model.json", message: /:port from 1 to 65535/ },
    { uri: "https://user:secret@h/model.json", message: /credentials do not belong in the uri/ },
    { uri: "s3://Bad_Bucket/model.json", message: /s3 URIs are s3:\/\/<bucket>\/<key>/ },
    { uri: "s3://bucket", message: /s3 URIs are s3:\/\/<bucket>\/<key>/ },
    { uri: "s3://bucket/prefix/", message: /s3 URIs are s3:\/\/<bucket>\/<key>/ },
    { uri: "file://localhost/srv/m", message: /file URIs are file:\/\/\/<absolute path>/ },
    { uri: "file://otherhost/srv/m", message: /file URIs are file:\/\/\/<absolute path>/ },
    { uri: "file:///srv/a%2F..%2Fetc", message: /no %2F, %5C or control characters/ },
    { uri: "pvc://Model_Store/x", message: /pvc URIs are pvc:\/\/<claim-name>/ },
    { uri: "pvc://store/../etc/passwd", message: /the path stays inside the volume/ },
    { uri: "pvc://store/%2e%2e/etc/passwd", message: /the path stays inside the volume/ },
    { uri: "pvc://store/a%ZZ", message: /every % in the uri must start a percent-encoded UTF-8 character/ },
    { uri: "https://h/c/%E0%A4%A.json", message: /every % in the uri must start a percent-encoded UTF-8 character/ },
    { uri: "https://h/c/%C0%80.json", message: /every % in the uri must start a percent-encoded UTF-8 character/ },
  ];
  for (const c of bad) {
    it(`rejects ${JSON.stringify(c.uri)} with the grammar's message`, () => {
      assert.throws(() => parseModelUri(c.uri), c.message);
    });
  }

  it("never echoes the credentials of a URI it refuses", () => {
    assert.throws(
      () => parseModelUri("https://user:s3cr3t@h/model.json"),
      (err: Error) => !err.message.includes("s3cr3t") && err.message.includes("https://***@h/model.json"),
    );
  });

  it("checks the source against the model format when it is given", () => {
    assert.throws(
      () => parseModelUri("https://h/m/saved_model.pb", "tf-saved-model"),
      /use a pvc:\/\/ or file:\/\/ uri/,
    );
    assert.throws(() => parseModelUri("s3://bucket/m/weights.bin", "tfjs-graph"), /must name the model\.json file/);
    assert.doesNotThrow(() => parseModelUri("https://h/m/MODEL.JSON?x=1", "tfjs-layers"));
    assert.doesNotThrow(() => parseModelUri("pvc://store/saved", "tf-saved-model"));
  });
});

describe("fetch: relative paths from model.json", function () {
  for (const p of ["group1-shard1of1.bin", "weights/a.bin", "a b.bin"]) {
    it(`accepts "${p}"`, () => {
      assert.equal(checkRelativePath(p, "m"), p);
    });
  }
  const bad: [string, RegExp][] = [
    ["", /empty path/],
    ["/etc/passwd", /must be relative/],
    ["../x.bin", /must stay inside/],
    ["a/./b.bin", /must stay inside/],
    ["a//b.bin", /must stay inside/],
    ["a\\b.bin", /forbidden character/],
    ["a\nb.bin", /forbidden character/],
    ["https://evil/x.bin", /must not be a URL/],
  ];
  for (const [p, message] of bad) {
    it(`rejects ${JSON.stringify(p)}`, () => {
      assert.throws(() => checkRelativePath(p, "model.json"), message);
    });
  }
});

describe("fetch: redaction", function () {
  const cases: [string, string][] = [
    ["https://models.example.com/m/model.json", "https://models.example.com/m/model.json"],
    ["https://user:pw@h/m/model.json", "https://***@h/m/model.json"],
    [
      "https://h/m/model.json?X-Amz-Signature=abc&X-Amz-Credential=AKIA/x",
      "https://h/m/model.json?X-Amz-Signature=***&X-Amz-Credential=***",
    ],
    ["not a url //user:pw@thing", "not a url //***@thing"],
  ];
  for (const [input, output] of cases) {
    it(`redacts ${input} to ${output}`, () => {
      assert.equal(redactUri(input), output);
    });
  }

  it("redacts URLs inside free text and keeps sentence punctuation", () => {
    assert.equal(
      redactText("Request failed: http://u:p@h/x?sig=1: bad, and s3://b/k.", []),
      "Request failed: http://***@h/x?sig=***: bad, and s3://b/k.",
    );
  });

  it("scrubs every known secret value from text", () => {
    assert.equal(redactText("header Bearer tok3n-123 leaked tok3n-123", ["tok3n-123"]), "header Bearer *** leaked ***");
  });

  it("does not scrub secrets too short to be meaningful", () => {
    assert.equal(redactText("a b c", ["a"]), "a b c");
  });

  it("lists a URI's password and query values as secrets", () => {
    assert.deepEqual(uriSecrets("https://u:p%40ss@h/m.json?sig=xyz"), ["xyz", "p%40ss", "p@ss"]);
    assert.deepEqual(uriSecrets("s3://b/k"), []);
  });
});
