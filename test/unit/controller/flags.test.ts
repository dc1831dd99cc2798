import assert from "node:assert/strict";
import { numberFlag } from "../../../operator/src/flags.ts";

describe("numberFlag", function () {
  const positive = { min: 0, minInclusive: false };
  const workers = { min: 1, max: 256, integer: true };
  const good: [string, Parameters<typeof numberFlag>[2], number][] = [
    ["0.5", positive, 0.5],
    ["30", positive, 30],
    ["1", workers, 1],
    ["256", workers, 256],
    ["0", { min: 0, max: 65535, integer: true }, 0],
  ];
  for (const [raw, rule, want] of good) {
    it(`accepts ${raw} for ${JSON.stringify(rule)}`, function () {
      assert.equal(numberFlag("x", raw, rule), want);
    });
  }
  const bad: [string | undefined, Parameters<typeof numberFlag>[2], RegExp][] = [
    ["0", positive, /--x must be a number greater than 0, got "0"$/],
    ["-3", positive, /greater than 0/],
    ["ten", positive, /got "ten"/],
    ["", positive, /got ""/],
    [undefined, positive, /got ""/],
    ["Infinity", positive, /greater than 0/],
    ["0", workers, /--x must be an integer from 1 to 256, got "0"$/],
    ["1.5", workers, /an integer/],
    ["257", workers, /from 1 to 256/],
    ["-1", { min: 0 }, /--x must be a number of at least 0, got "-1"$/],
  ];
  for (const [raw, rule, message] of bad) {
    it(`refuses ${JSON.stringify(raw)} for ${JSON.stringify(rule)}, naming the flag`, function () {
      assert.throws(() => numberFlag("x", raw, rule), message);
    });
  }
});
