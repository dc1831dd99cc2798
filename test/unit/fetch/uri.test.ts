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
      expected: { scheme: "https", href: "https://models.example.com/sentiment/3/model.json" },
    },
    {
      uri: "  http://127.0.0.1:8080/m/model.json?sig=1 ",
      expected: { scheme: "http", href: "http://127.0.0.1:8080/m/model.json?sig=1" },
    },
    {
      uri: "s3://models/sentiment/3/model.json",
      expected: { scheme: "s3", bucket: "models", key: "sentiment/3/model.json" },
    },
    { uri: "S3://my.bucket-1/model.json", expected: { scheme: "s3", bucket: "my.bucket-1", key: "model.json" } },
    { uri: "file:///srv/models/m/model.json", expected: { scheme: "file", path: "/srv/models/m/model.json" } },
    { uri: "file:///srv/models/saved%20model/", expected: { scheme: "file", path: "/srv/models/saved model" } },
    { uri: "file://localhost/srv/m", expected: { scheme: "file", path: "/srv/m" } },
    {
      uri: "pvc://model-store/sentiment/3/model.json",
      expected: { scheme: "pvc", claim: "model-store", path: "sentiment/3/model.json" },
    },
    { uri: "pvc://model-store", expected: { scheme: "pvc", claim: "model-store", path: "" } },
    { uri: "pvc://model-store/dir/", expected: { scheme: "pvc", claim: "model-store", path: "dir" } },
  ];
  for (const c of good) {
    it(`accepts ${c.uri.trim()}`, () => {
      const loc = parseModelUri(c.uri);
      const shown = "url" in loc ? { scheme: loc.scheme, href: loc.url.href } : loc;
      assert.deepEqual(shown, c.expected);
    });
  }

  const bad: { uri: string; message: RegExp }[] = [
    { uri: "", message: /model URI is empty/ },
    { uri: "models/model.json", message: /has no scheme \(supported: https, http, s3, pvc, file\)/ },
    { uri: "ftp://h/model.json", message: /scheme "ftp:" is not supported/ },
    {
      uri: "gs://bucket/model.json",
      message: /gs:\/\/ model URIs are not supported yet; .*AWS_ENDPOINT_URL_S3=https:\/\/storage\.googleapis\.com/,
    },
    { uri: "https://h/models/", message: /must name a file/ },
    { uri: "https://h", message: /must name a file/ },
    { uri: "s3://Bad_Bucket/model.json", message: /invalid bucket name "Bad_Bucket"/ },
    { uri: "s3://bucket", message: /must name an object/ },
    { uri: "s3://bucket/prefix/", message: /must name an object/ },
    { uri: "file://otherhost/srv/m", message: /names host "otherhost"; file:\/\/ URIs must be local/ },
    { uri: "file:///srv/a%2F..%2Fetc", message: /must not contain "\.\." segments/ },
    { uri: "pvc://Model_Store/x", message: /invalid claim name "Model_Store"/ },
    { uri: "pvc://store/../etc/passwd", message: /must stay inside the model directory/ },
    { uri: "pvc://store/a%ZZ", message: /invalid percent-encoding/ },
    { uri: "https://h/c/%E0%A4%A.json", message: /invalid percent-encoding/ },
  ];
  for (const c of bad) {
    it(`rejects "${c.uri}" with a message naming the problem`, () => {
      assert.throws(() => parseModelUri(c.uri), c.message);
    });
  }
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
