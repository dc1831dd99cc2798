import assert from "node:assert/strict";
import {
  ItemExponentialBackoff,
  MaxOf,
  TokenBucket,
  defaultControllerRateLimiter,
} from "../../../operator/src/controller/rate-limiter.ts";
import { FakeClock } from "./fake-clock.ts";

describe("rate limiters", () => {
  describe("ItemExponentialBackoff", () => {
    it("doubles the delay per failure from the base up to the cap", () => {
      const backoff = new ItemExponentialBackoff(5, 1_000_000);
      const delays = Array.from({ length: 22 }, () => backoff.when("ns/a"));
      assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 80]);
      assert.equal(delays[17], 5 * 2 ** 17);
      assert.equal(delays[18], 1_000_000, "5 ms · 2^18 exceeds 1000 s and is capped");
      assert.equal(delays[21], 1_000_000);
      assert.equal(backoff.retries("ns/a"), 22);
    });

    it("keeps a separate history per key and starts over after forget", () => {
      const backoff = new ItemExponentialBackoff(5, 1000);
      backoff.when("ns/a");
      backoff.when("ns/a");
      assert.equal(backoff.when("ns/b"), 5, "another key is not slowed down by ns/a");
      backoff.forget("ns/a");
      assert.equal(backoff.retries("ns/a"), 0);
      assert.equal(backoff.when("ns/a"), 5);
    });

    it("never overflows into NaN or Infinity after many failures", () => {
      const backoff = new ItemExponentialBackoff(5, 1000);
      let last = 0;
      for (let i = 0; i < 2000; i++) last = backoff.when("k");
      assert.equal(last, 1000);
    });

    it("rejects a cap below the base", () => {
      assert.throws(() => new ItemExponentialBackoff(10, 5), /baseMs <= maxMs/);
    });
  });

  describe("TokenBucket", () => {
    it("lets a burst through at once and then spaces requests at 1/qps", () => {
      const clock = new FakeClock();
      const bucket = new TokenBucket(clock, 10, 100);
      for (let i = 0; i < 100; i++) assert.equal(bucket.when(`k${i}`), 0);
      const next = [bucket.when("x"), bucket.when("y"), bucket.when("z")];
      next.forEach((delay, i) => {
        assert.ok(Math.abs(delay - 100 * (i + 1)) < 1e-6, `delay ${i} was ${delay}`);
      });
    });

    it("refills at qps over time, up to the burst", () => {
      const clock = new FakeClock();
      const bucket = new TokenBucket(clock, 10, 5);
      for (let i = 0; i < 5; i++) bucket.when("k");
      clock.advance(300);
      assert.deepEqual([bucket.when("k"), bucket.when("k"), bucket.when("k")], [0, 0, 0]);
      assert.ok(bucket.when("k") > 0);
      clock.advance(3_600_000);
      for (let i = 0; i < 5; i++) assert.equal(bucket.when("k"), 0, "the bucket never holds more than the burst");
      assert.ok(bucket.when("k") > 0);
    });
  });

  describe("MaxOf", () => {
    it("returns the longer of per-key back-off and the global bucket", () => {
      const clock = new FakeClock();
      const limiter = new MaxOf(new ItemExponentialBackoff(5, 1000), new TokenBucket(clock, 1, 1));
      assert.equal(limiter.when("a"), 5, "first try: back-off 5 ms, bucket has a token");
      assert.equal(limiter.when("b"), 1000, "bucket empty at 1 qps: 1 s beats 5 ms");
      limiter.forget("a");
      assert.equal(limiter.retries("a"), 0);
    });

    it("matches client-go's default: 5 ms first retry, 10 qps after a burst of 100", () => {
      const clock = new FakeClock();
      const limiter = defaultControllerRateLimiter(clock);
      assert.equal(limiter.when("a"), 5);
      for (let i = 0; i < 99; i++) limiter.when(`b${i}`);
      assert.ok(Math.abs(limiter.when("c") - 100) < 1e-6);
    });
  });
});
