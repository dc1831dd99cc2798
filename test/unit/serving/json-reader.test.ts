import assert from "node:assert/strict";
import {
  MAX_DEPTH,
  NumericList,
  asArray,
  isJsonObject,
  isList,
  readJson,
} from "../../../serving-image/src/protocol/json-reader.ts";
import { decodeFlatTensor, decodeNestedTensor } from "../../../serving-image/src/protocol/json-tensor.ts";
import { prng } from "../controller/fake-clock.ts";

/** The value with every NumericList built out as JavaScript arrays of its exact numbers. */
function plain(v: unknown): unknown {
  if (v instanceof NumericList) return v.toNested();
  if (Array.isArray(v)) return v.map(plain);
  if (isJsonObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(v)) Object.defineProperty(out, k, { value: plain(e), enumerable: true });
    return out;
  }
  return v;
}

function read(text: string): unknown {
  return readJson(Buffer.from(text));
}

/** What JSON.parse throws for `text` (its message), or undefined. */
function parseError(text: string): string | undefined {
  try {
    JSON.parse(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A random JSON number text, in any of the spellings the grammar allows. */
function numberText(random: () => number): string {
  const digits = (n: number, first = false) =>
    Array.from({ length: n }, (_, i) =>
      String(Math.floor(random() * (first && i === 0 ? 9 : 10)) + (first && i === 0 ? 1 : 0)),
    ).join("");
  const intLen = Math.floor(random() * 22);
  let s = random() < 0.3 ? "-" : "";
  s += intLen === 0 ? "0" : digits(intLen, true);
  if (random() < 0.7) s += "." + (random() < 0.2 ? "000" : "") + digits(1 + Math.floor(random() * 22));
  if (random() < 0.3)
    s +=
      (random() < 0.5 ? "e" : "E") +
      (["", "+", "-"][Math.floor(random() * 3)] ?? "") +
      String(Math.floor(random() * 60));
  return s;
}

/** A list of these number texts reads, in float32, as JSON.parse then Math.fround would read it. */
function assertRoundsAsFloat32(texts: readonly string[]): void {
  const list = read(`[${texts.join(",")}]`);
  assert.ok(list instanceof NumericList);
  assert.deepStrictEqual(
    Array.from(list.float32()),
    texts.map((t) => Math.fround(Number(t))),
    texts.join(","),
  );
}

describe("JSON reader (request bodies with flat tensors)", () => {
  it("reads a rectangular list of numbers as one NumericList with its shape, whatever its depth", () => {
    const v = read(' { "instances" : [ [ [1, 2.5, -3e2] , [4,5,6] ] ] } ') as Record<string, unknown>;
    const list = v["instances"];
    assert.ok(list instanceof NumericList);
    assert.deepEqual(list.shape, [1, 2, 3]);
    assert.equal(list.length, 1);
    assert.equal(list.size, 6);
    assert.deepEqual(Array.from(list.numbers()), [1, 2.5, -300, 4, 5, 6]);
    assert.deepEqual(list.toNested(), [
      [
        [1, 2.5, -300],
        [4, 5, 6],
      ],
    ]);
    assert.ok(isList(list));
    assert.ok(!isJsonObject(list));
    assert.deepEqual(asArray(list), [
      [
        [1, 2.5, -300],
        [4, 5, 6],
      ],
    ]);
  });

  it("reads ragged, empty and mixed lists as JSON.parse does (arrays), numeric parts still flat", () => {
    for (const text of [
      "[[1,2],[3]]",
      "[]",
      "[[]]",
      "[[1],[[2]]]",
      "[[[1]],[2]]",
      '[1,"a"]',
      "[1,[2]]",
      "[[1],2]",
      "[true]",
      "[null,1]",
    ]) {
      const v = read(text);
      assert.ok(Array.isArray(v), `${text} reads as an array`);
      assert.deepEqual(plain(v), JSON.parse(text), text);
    }
    const ragged = read("[[1,2],[3]]") as unknown[];
    assert.ok(ragged[0] instanceof NumericList && ragged[1] instanceof NumericList);
  });

  it("reads 2,000 random documents exactly as JSON.parse does", () => {
    const random = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const strings = [
      "",
      "a",
      "héllo",
      "\u2028",
      "tab\there",
      'q"uote',
      "back\\slash",
      "\u0000\u001f",
      "😀",
      "\ud800",
      "/",
    ];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 4 || r < 0.35)
        return pick([() => Number(numberText(random)), () => pick(strings), () => pick([true, false, null])])();
      if (r < 0.55) {
        // A rectangular numeric list.
        const shape = Array.from({ length: 1 + Math.floor(random() * 3) }, () => 1 + Math.floor(random() * 3));
        const build = (d: number): unknown =>
          d === shape.length ? Number(numberText(random)) : Array.from({ length: shape[d]! }, () => build(d + 1));
        return build(0);
      }
      if (r < 0.75) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 4); i > 0; i--)
        o[pick(["a", "b", "instances", "__proto__x", "é"])] = value(depth + 1);
      return o;
    };
    for (let i = 0; i < 2000; i++) {
      const doc = value(0);
      // Spell numbers as a client might: JSON.stringify's shortest form, or the random text itself.
      const text = JSON.stringify(doc, null, random() < 0.5 ? 0 : 2);
      assert.deepStrictEqual(plain(read(text)), JSON.parse(text), text);
    }
  });

  it("reads every number exactly as JSON.parse does, and rounds lists to float32 as Math.fround does", () => {
    const random = prng(11);
    for (let i = 0; i < 20_000; i++) {
      const texts = Array.from({ length: 3 }, () => numberText(random));
      const expected = texts.map((t) => JSON.parse(t) as number);
      assert.deepStrictEqual(read(texts[0]!), expected[0], texts[0]);
      const list = read(`[${texts.join(",")}]`);
      assert.ok(list instanceof NumericList);
      assert.deepStrictEqual(Array.from(list.float32()), expected.map(Math.fround), texts.join(","));
      assert.deepStrictEqual(Array.from(list.numbers()), expected, texts.join(","));
    }
  });

  it("rounds the numbers clients print for float32 values (16–17 digits) exactly as JSON.parse then Float32Array would", () => {
    const random = prng(3);
    const f = new Float32Array(1);
    for (let i = 0; i < 50_000; i++) {
      const bits = new Uint32Array(f.buffer);
      bits[0] = Math.floor(random() * 2 ** 32);
      if (!Number.isFinite(f[0]!)) continue;
      // As Python's json.dumps(float(x)) and JSON.stringify print a float32 widened to a double.
      const doubleText = String(f[0]);
      // And with a few digits more or less, as other printers do.
      const texts = [doubleText, f[0]!.toPrecision(16), f[0]!.toPrecision(18), f[0]!.toExponential(17)];
      assertRoundsAsFloat32(texts);
    }
  });

  it("rounds numbers within an ulp of a float32 halfway point as JSON.parse then Float32Array would", () => {
    const random = prng(5);
    const f = new Float32Array(2);
    const bits = new Uint32Array(f.buffer);
    const d = new Float64Array(1);
    const dbits = new BigUint64Array(d.buffer);
    let checked = 0;
    while (checked < 20_000) {
      bits[0] = Math.floor(random() * 0x7f000000);
      bits[1] = bits[0] + 1;
      // Halfway between two float32 neighbours (exact in a double), and the doubles around it.
      d[0] = (f[0]! + f[1]!) / 2;
      const texts: string[] = [];
      for (const step of [-2n, -1n, 0n, 1n, 2n]) {
        const near = new Float64Array(new BigUint64Array([dbits[0]! + step]).buffer)[0]!;
        texts.push(near.toPrecision(17), near.toPrecision(19));
      }
      assertRoundsAsFloat32(texts);
      checked++;
    }
  });

  it("keeps the exact doubles where a list needs them (int32, errors), even after a float32 reading", () => {
    const list = read("[0.30000001192092896, 12345678901234567, 3]");
    assert.ok(list instanceof NumericList);
    assert.deepStrictEqual(Array.from(list.numbers()), [0.30000001192092896, Number("12345678901234567"), 3]);
    assert.throws(
      () => decodeNestedTensor(list, "int32", "x"),
      /Bad value in x at \[0\]: expected an integer for int32, got number 0.30000001192092896/,
    );
    const big = read('{"data": [[1, 2], [3, 12345678901234567]]}') as Record<string, unknown>;
    assert.throws(
      () => decodeFlatTensor(big["data"], "int32", [4], "Input 'x'"),
      /Input 'x': bad element 3 of 'data': integer 12345678901234568 is outside the int32 range/,
    );
    assert.throws(
      () => decodeNestedTensor(read("[[1, 2], [3, 4]]"), "bool", "x"),
      /Bad value in x at \[0\]\[0\]: expected true or false for bool, got number 1/,
    );
  });

  it("gives a NumericList the same tensors as the nested arrays JSON.parse builds", () => {
    const text = "[[[0.1, 2], [3, -4.5e-3]], [[5, 6], [7, 0.30000001192092896]]]";
    for (const dtype of ["float32", "int32"] as const) {
      let fromList: unknown;
      let fromArrays: unknown;
      try {
        fromList = decodeNestedTensor(read(text), dtype, "x");
      } catch (err) {
        fromList = (err as Error).message;
      }
      try {
        fromArrays = decodeNestedTensor(JSON.parse(text), dtype, "x");
      } catch (err) {
        fromArrays = (err as Error).message;
      }
      assert.deepStrictEqual(fromList, fromArrays, dtype);
    }
    const flat = decodeFlatTensor(read("[[1, 2], [3, 4]]"), "float32", [4], "x");
    assert.deepEqual(flat.shape, [4]);
    assert.deepEqual(Array.from(flat.data as Float32Array), [1, 2, 3, 4]);
    const mixed = decodeFlatTensor(read("[[1, 2], [3]]"), "float32", [3], "x");
    assert.deepEqual(Array.from(mixed.data as Float32Array), [1, 2, 3]);
  });

  it("throws JSON.parse's own error for malformed text", () => {
    const bad = [
      "",
      " ",
      "[1,]",
      "[01]",
      "[1.]",
      "[.5]",
      "[1 2]",
      "{'a':1}",
      '{"a" 1}',
      '{"a":1,}',
      '["\u0001"]',
      "\ufeff[1]",
      "[1] x",
      "[-]",
      "[1e]",
      "[1e+]",
      "tru",
      "nul",
      "[NaN]",
      "[Infinity]",
      '"\\x"',
      '"\\u12g4"',
      '"abc',
      "[[1,2],[3,4]",
      "[[1,2],[3,4]]]",
      "{",
    ];
    for (const text of bad) {
      const expected = parseError(text);
      assert.ok(expected !== undefined, `${JSON.stringify(text)} is malformed`);
      assert.throws(
        () => read(text),
        (err: Error) => err instanceof SyntaxError && err.message === expected,
        JSON.stringify(text),
      );
    }
  });

  it("makes __proto__ an own property as JSON.parse does, never the prototype", () => {
    const v = read('{"__proto__": {"polluted": true}, "a": 1, "a": 2}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.keys(v), ["__proto__", "a"]);
    assert.equal(v["a"], 2);
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });

  it("leaves nesting deeper than its limit to JSON.parse, with the same answer", () => {
    const deep = "[".repeat(MAX_DEPTH + 10) + "1" + "]".repeat(MAX_DEPTH + 10);
    assert.deepStrictEqual(plain(read(deep)), JSON.parse(deep));
    const deepObject = '{"a":'.repeat(MAX_DEPTH + 10) + "1" + "}".repeat(MAX_DEPTH + 10);
    assert.deepStrictEqual(read(deepObject), JSON.parse(deepObject));
  });

  it("decodes strings from UTF-8 as Buffer#toString does, invalid bytes included", () => {
    const bytes = Buffer.concat([
      Buffer.from('["a'),
      Buffer.from([0xff, 0xc3]),
      Buffer.from("\\n", "latin1"),
      Buffer.from('b"]'),
    ]);
    assert.deepStrictEqual(readJson(bytes), JSON.parse(bytes.toString("utf8")));
    assert.deepStrictEqual(
      readJson(bytes, 1, bytes.length - 1),
      JSON.parse(bytes.toString("utf8", 1, bytes.length - 1)),
    );
  });
});
