import assert from "node:assert/strict";
import { formatMicroTime } from "../../../operator/src/controller/clock.ts";
import { mayAcquire, nextLeaseSpec, type LeaseSpec } from "../../../operator/src/controller/leader-election.ts";

describe("leader election decisions", () => {
  const now = 1_700_000_100_000;
  const held: LeaseSpec = {
    holderIdentity: "other",
    leaseDurationSeconds: 15,
    renewTime: "2020-01-01T00:00:00.000000Z",
  };

  const cases: [string, LeaseSpec, number, boolean][] = [
    ["an empty holder (released lease) may be taken at once", { ...held, holderIdentity: "" }, now, true],
    ["a null holder may be taken", { ...held, holderIdentity: null }, now, true],
    ["our own lease may be renewed", { ...held, holderIdentity: "me" }, now, true],
    ["another holder's lease observed just now may not be taken", held, now, false],
    ["another holder's lease observed 14.999 s ago may not be taken", held, now - 14_999, false],
    ["another holder's lease unchanged for the full duration may be taken", held, now - 15_000, true],
  ];
  for (const [name, spec, observedAt, expected] of cases) {
    it(name, () => {
      assert.equal(mayAcquire(spec, "me", observedAt, now), expected);
    });
  }

  it("judges expiry by when we observed the record, not by the holder's renewTime (clock skew)", () => {
    const skewed: LeaseSpec = { ...held, renewTime: formatMicroTime(now - 3_600_000) };
    assert.equal(mayAcquire(skewed, "me", now - 1000, now), false);
  });

  it("counts a transition and sets acquireTime when taking another holder's lease", () => {
    const spec = nextLeaseSpec({ ...held, leaseTransitions: 4, acquireTime: "x" }, "me", 15_000, now);
    assert.deepEqual(spec, {
      holderIdentity: "me",
      leaseDurationSeconds: 15,
      acquireTime: formatMicroTime(now),
      renewTime: formatMicroTime(now),
      leaseTransitions: 5,
    });
  });

  it("keeps acquireTime and transitions when renewing our own lease", () => {
    const spec = nextLeaseSpec(
      { ...held, holderIdentity: "me", leaseTransitions: 4, acquireTime: "t0" },
      "me",
      15_000,
      now,
    );
    assert.equal(spec.acquireTime, "t0");
    assert.equal(spec.leaseTransitions, 4);
    assert.equal(spec.renewTime, formatMicroTime(now));
  });

  it("starts a new lease at zero transitions", () => {
    assert.equal(nextLeaseSpec(undefined, "me", 15_000, now).leaseTransitions, 0);
  });

  it("writes MicroTime with exactly six fractional digits", () => {
    assert.equal(formatMicroTime(Date.UTC(2026, 0, 2, 3, 4, 5, 67)), "2026-01-02T03:04:05.067000Z");
  });
});
