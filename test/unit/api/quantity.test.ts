import assert from "node:assert/strict";
import {
  compareQuantities,
  isWhole,
  parseQuantity,
  quantityOf,
  roundUpToMilli,
  type Quantity,
} from "../../../operator/src/api/quantity.ts";
import { quantityValue } from "../../../operator/src/reconcile/classify.ts";

const value = (s: string): string | undefined => {
  const q = parseQuantity(s);
  return q === undefined ? undefined : `${q.num}/${q.den}`;
};
const frac = (num: bigint, den = 1n): Quantity => ({ num, den });
const same = (a: Quantity | undefined, b: Quantity): boolean => a !== undefined && compareQuantities(a, b) === 0;

describe("quantities, read as the API server's resource.ParseQuantity reads them", () => {
  // What the API server does with each, checked against kube-apiserver v1.34 through CEL's isQuantity
  // (and, for those the Deployment accepts, in test/integration/api/admission-runtime.test.ts).
  const accepted: [string, Quantity][] = [
    ["0", frac(0n)],
    ["1", frac(1n)],
    ["-1", frac(-1n)],
    ["+1", frac(1n)],
    ["0.5", frac(1n, 2n)],
    [".5", frac(1n, 2n)],
    ["1.", frac(1n)],
    ["007", frac(7n)],
    ["1e3", frac(1000n)],
    ["1E3", frac(1000n)],
    ["1e+3", frac(1000n)],
    ["1e-3", frac(1n, 1000n)],
    ["1e03", frac(1000n)],
    ["100n", frac(1n, 10_000_000n)],
    ["100u", frac(1n, 10_000n)],
    ["512m", frac(64n, 125n)],
    ["1k", frac(1000n)],
    ["1Ki", frac(1024n)],
    ["1.5Gi", frac(3n * 2n ** 29n)],
    ["1E", frac(10n ** 18n)],
    ["1Ei", frac(2n ** 60n)],
    // Finer than 1n is rounded up to 1n.
    ["1e-12", frac(1n, 10n ** 9n)],
    ["0.0000000001", frac(1n, 10n ** 9n)],
    // Binary quantities are capped at the largest int64.
    ["10Ei", frac(2n ** 63n - 1n)],
    // Quirks of the parser: no number at all reads as zero.
    ["m", frac(0n)],
    ["+", frac(0n)],
    [".", frac(0n)],
    ["e3", frac(0n)],
    ["Ki", frac(0n)],
  ];
  for (const [s, q] of accepted) {
    it(`reads ${JSON.stringify(s)} as ${q.num}/${q.den}`, () => {
      assert.ok(same(parseQuantity(s), q), `${value(s)}`);
    });
  }

  const refused = [
    "",
    " 1",
    "1 ",
    "1\u00a0",
    "1K",
    "1ki",
    "1e",
    "1ee3",
    "1e3.5",
    "1Mi5",
    "1.5.5",
    "0x10",
    "1,5",
    ".e-10",
  ];
  for (const s of refused) {
    it(`refuses ${JSON.stringify(s)}`, () => {
      assert.equal(parseQuantity(s), undefined);
    });
  }

  it("asks for a number first in quantityOf, as the documented grammar does", () => {
    for (const s of ["m", "+", ".", "e3", "Ki"]) assert.equal(quantityOf(s), undefined, s);
    for (const s of ["1.", ".5", "-1", "+1m"]) assert.notEqual(quantityOf(s), undefined, s);
  });

  it("tells whole numbers, however they are written", () => {
    for (const s of ["1000m", "1.5Gi", "1e3", "1.0"]) assert.ok(isWhole(parseQuantity(s)!), s);
    for (const s of ["512m", "1.1Gi", "1e-3", "1.0000001Gi"]) assert.ok(!isWhole(parseQuantity(s)!), s);
  });

  it("rounds up to a multiple of 1m away from zero, as a resource list stores it", () => {
    assert.ok(same(roundUpToMilli(parseQuantity("100u")!), frac(1n, 1000n)));
    assert.ok(same(roundUpToMilli(parseQuantity("1500u")!), frac(2n, 1000n)));
    assert.ok(same(roundUpToMilli(parseQuantity("-1500u")!), frac(-2n, 1000n)));
    assert.ok(same(roundUpToMilli(parseQuantity("2")!), frac(2n)));
  });
});

describe("quantityValue (drift)", () => {
  // Each spelling with the form kube-apiserver v1.34 stores it in as a Deployment container's cpu
  // request (read back by hand): the two must have the same value, or the child looks drifted
  // forever. It keeps some spellings as written ("1e3", "+1", "1."), which must still have a value.
  const normalised: [string, string][] = [
    ["0.5", "500m"],
    ["1000m", "1"],
    ["1Gi", "1Gi"],
    ["1.5Gi", "1536Mi"],
    [".5", "500m"],
    ["1e3", "1e3"],
    ["1e4", "10e3"],
    ["1e-1", "100e-3"],
    ["2.5e3", "2500"],
    ["0.1e1", "1"],
    ["+1", "+1"],
    ["1.", "1."],
    ["1e-3", "1e-3"],
    ["100u", "1m"],
    ["1n", "1m"],
    ["1e-9", "1e-3"],
    ["1500u", "2m"],
  ];
  for (const [written, stored] of normalised) {
    it(`takes ${written} and the stored ${stored} for the same value`, () => {
      assert.notEqual(quantityValue(written), undefined);
      assert.equal(quantityValue(written), quantityValue(stored));
    });
  }

  it("has no value for what only the parser's quirks make a quantity", () => {
    for (const s of ["m", "e3", "Ki", "abc", "1.2.3"]) assert.equal(quantityValue(s), undefined, s);
  });
});
