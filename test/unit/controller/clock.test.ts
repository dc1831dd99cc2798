import assert from "node:assert/strict";
import { formatMicroTime, realClock } from "../../../operator/src/controller/clock.ts";

describe("realClock", function () {
  it("reads whole milliseconds near the wall clock that never go backwards", function () {
    let last = realClock.now();
    assert.ok(Math.abs(last - Date.now()) < 1_000, "starts at the wall clock");
    for (let i = 0; i < 10_000; i++) {
      const t = realClock.now();
      assert.ok(Number.isInteger(t), `${t} is not whole milliseconds (Event names need BigInt(now))`);
      assert.ok(t >= last, "went backwards");
      last = t;
    }
    assert.match(formatMicroTime(last), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000Z$/);
  });
});
