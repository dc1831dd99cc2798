import assert from "node:assert/strict";
import { readServeConfig } from "../../../serving-image/src/config.ts";
import { Env } from "../../../serving-image/src/contract.ts";
import { modelUriProblem } from "../../../serving-image/src/grammar.ts";
import { parseModelUri } from "../../../serving-image/src/fetch/uri.ts";
import { admissionCases } from "../api/admission-cases.ts";

const hex = (b: number): string => `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
const decodes = (s: string): boolean => {
  try {
    decodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
};
/** Whether the grammar's percent-encoding rule (and only it) lets `encoded` through, in a valid https path. */
const admitted = (encoded: string): boolean => {
  const problem = modelUriProblem(`https://h/m/x${encoded}y.json`);
  return problem === undefined || !problem.startsWith("every % in the uri");
};

describe("the model URI grammar (serving-image/src/grammar.ts)", () => {
  it("admits exactly the percent-encoded sequences decodeURIComponent decodes: every 1- and 2-byte one", () => {
    const wrong: string[] = [];
    for (let a = 0; a < 256; a++) {
      const one = hex(a);
      if (admitted(one) !== decodes(one)) wrong.push(one);
      for (let b = 0; b < 256; b++) {
        const two = one + hex(b);
        if (admitted(two) !== decodes(two)) wrong.push(two);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("admits exactly the percent-encoded 3- and 4-byte sequences decodeURIComponent decodes (around every lead byte)", () => {
    const wrong: string[] = [];
    for (let lead = 0xe0; lead <= 0xf7; lead++) {
      for (const second of [0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0]) {
        for (const third of [0x7f, 0x80, 0xbf, 0xc0]) {
          const three = hex(lead) + hex(second) + hex(third);
          if (admitted(three) !== decodes(three)) wrong.push(three);
          for (const fourth of [0x7f, 0x80, 0xbf, 0xc0]) {
            const four = three + hex(fourth);
            if (admitted(four) !== decodes(four)) wrong.push(four);
          }
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("admits only http(s) URIs whose path, query and fragment WHATWG URL keeps as written (a generated case each)", () => {
    const rewritten: string[] = [];
    for (const c of admissionCases()) {
      const uri = (c.manifest.spec as { model: { uri: string } }).model.uri;
      if (!/^https?:/.test(uri) || modelUriProblem(uri) !== undefined) continue;
      const url = new URL(uri);
      // The host may be written canonically ([::ffff:a00:7], no :80); the rest is the request's path.
      // URL percent-encodes ' in a query, which names the same thing.
      const afterHost = (u: string): string => u.replace(/^https?:\/\/[^/?#]*/, "");
      if (afterHost(url.href).replaceAll("%27", "'") !== afterHost(uri)) rewritten.push(`${uri} → ${url.href}`);
    }
    assert.deepEqual(rewritten, []);
  });

  it("parses every URI it admits, and refuses every URI it does not (a generated case each)", () => {
    for (const c of admissionCases()) {
      const uri = (c.manifest.spec as { model: { uri?: string } }).model.uri ?? "";
      if (modelUriProblem(uri) === undefined) assert.doesNotThrow(() => parseModelUri(uri), uri);
      else assert.throws(() => parseModelUri(uri), uri);
    }
  });
});

describe("serve reads the served name and the version with the CRD's grammar", () => {
  const config = (env: Record<string, string>) =>
    readServeConfig(env, { containerBytes: undefined, heapBytes: 2 ** 30 });

  it("reports a version as TF Serving numbers it", () => {
    assert.equal(config({ [Env.modelVersion]: "007" }).config.modelVersion, "7");
    assert.equal(config({ [Env.modelVersion]: "9".repeat(15) }).config.modelVersion, "9".repeat(15));
    assert.equal(config({}).config.modelVersion, "1");
  });

  for (const v of ["v3", "3.1", "1e3", "-1", "9".repeat(16), "3\u00a0"]) {
    it(`refuses the version ${JSON.stringify(v)}, saying what to write`, () => {
      const { problems } = config({ [Env.modelVersion]: v });
      assert.equal(problems.length, 1);
      assert.match(problems[0]!, /MAAS_MODEL_VERSION: version must be a number of at most 15 digits, e.g. "3"/);
    });
  }

  for (const n of ["a/b", "-a", "a".repeat(64), "modèle"]) {
    it(`refuses the served name ${JSON.stringify(n)}`, () => {
      assert.match(config({ [Env.servedName]: n }).problems[0] ?? "", /MAAS_SERVED_NAME: servedName must be/);
    });
  }

  it("accepts a served name of 63 letters, digits, '-', '_' and '.'", () => {
    const name = `A.b_c-${"d".repeat(57)}`;
    assert.deepEqual(config({ [Env.servedName]: name }).problems, []);
    assert.equal(config({ [Env.servedName]: name }).config.servedName, name);
  });
});
