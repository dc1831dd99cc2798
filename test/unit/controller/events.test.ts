import assert from "node:assert/strict";
import { EventAggregator, fitNote, validateEvent, type EventInput } from "../../../operator/src/controller/events.ts";
import { FakeClock } from "./fake-clock.ts";

const base: EventInput = {
  regarding: {
    apiVersion: "maas.dev/v1alpha1",
    kind: "ModelDeployment",
    namespace: "ml",
    name: "sentiment",
    uid: "u1",
  },
  type: "Warning",
  reason: "ModelFetchFailed",
  action: "Reconcile",
  note: "Failed to fetch the model of ModelDeployment ml/sentiment: 404",
};

describe("Events", () => {
  describe("validateEvent", () => {
    const bad: [string, Partial<EventInput>, RegExp][] = [
      ["a reason that is not CamelCase", { reason: "model_fetch_failed" }, /reason must be CamelCase/],
      ["a reason starting lower case", { reason: "fetchFailed" }, /reason must be CamelCase/],
      ["an action that is not CamelCase", { action: "re concile" }, /action must be CamelCase/],
      ["a note starting lower case", { note: "created Deployment ml/x" }, /capital letter/],
      ["a note over 1024 bytes", { note: "A" + "a".repeat(1024) }, /1025 bytes; the API allows 1024/],
      ["a note of 1000 characters but 1999 bytes", { note: "A" + "é".repeat(999) }, /1999 bytes/],
    ];
    for (const [what, change, message] of bad) {
      it(`rejects ${what}, naming the problem`, () => {
        assert.throws(() => {
          validateEvent({ ...base, ...change });
        }, message);
      });
    }
    it("cuts a note that is too long to fit, marking the cut, and leaves others alone", () => {
      const short = "Created Deployment ml/sentiment";
      assert.equal(fitNote(short), short);
      for (const long of ["A" + "a".repeat(5000), "A" + "é".repeat(700), "A" + "😀".repeat(400)]) {
        const fitted = fitNote(long);
        assert.ok(Buffer.byteLength(fitted) <= 1024, `${Buffer.byteLength(fitted)} bytes`);
        assert.ok(Buffer.byteLength(fitted) > 1016, "cut close to the limit");
        assert.ok(fitted.endsWith("…") && !fitted.includes("\uFFFD"));
        assert.ok(long.startsWith(fitted.slice(0, -1)));
        validateEvent({ ...base, note: fitted });
      }
    });
    it("accepts a CamelCase reason and a capitalised past-tense note", () => {
      validateEvent({ ...base, type: "Normal", reason: "Created", note: "Created Deployment ml/sentiment" });
    });
  });

  describe("EventAggregator", () => {
    it("creates an Event the first time and bumps its series count on repeats", () => {
      const clock = new FakeClock();
      const aggregator = new EventAggregator(clock);
      const first = aggregator.decide(base);
      assert.equal(first.kind, "create");
      clock.advance(10_000);
      const second = aggregator.decide(base);
      clock.advance(10_000);
      const third = aggregator.decide(base);
      assert.deepEqual(second, { kind: "bump", name: first.name, count: 2, lastObservedMs: clock.now() - 10_000 });
      assert.deepEqual(third, { kind: "bump", name: first.name, count: 3, lastObservedMs: clock.now() });
    });

    it("names Events after the object, unique even within one millisecond", () => {
      const aggregator = new EventAggregator(new FakeClock());
      const a = aggregator.decide(base);
      const b = aggregator.decide({ ...base, reason: "Other" });
      assert.match(a.name, /^sentiment\.[0-9a-f]+$/);
      assert.notEqual(a.name, b.name);
    });

    const distinct: [string, Partial<EventInput>][] = [
      ["note", { note: "Failed to fetch the model of ModelDeployment ml/sentiment: 500" }],
      ["reason", { reason: "ModelChecksumMismatch" }],
      ["type", { type: "Normal" }],
      ["object", { regarding: { ...base.regarding, name: "other" } }],
    ];
    for (const [what, change] of distinct) {
      it(`creates a separate Event when the ${what} differs`, () => {
        const aggregator = new EventAggregator(new FakeClock());
        aggregator.decide(base);
        assert.equal(aggregator.decide({ ...base, ...change }).kind, "create");
      });
    }

    it("starts a new Event when the last occurrence is older than the window", () => {
      const clock = new FakeClock();
      const aggregator = new EventAggregator(clock, 60_000);
      const first = aggregator.decide(base);
      clock.advance(59_999);
      assert.equal(aggregator.decide(base).kind, "bump");
      clock.advance(60_000);
      const again = aggregator.decide(base);
      assert.equal(again.kind, "create");
      assert.notEqual(again.name, first.name);
    });

    it("starts over after reset, e.g. when the Event expired on the server", () => {
      const aggregator = new EventAggregator(new FakeClock());
      aggregator.decide(base);
      aggregator.reset(base);
      assert.equal(aggregator.decide(base).kind, "create");
    });

    it("forgets the oldest series beyond its size limit instead of growing without bound", () => {
      const aggregator = new EventAggregator(new FakeClock(), 60_000, 2);
      aggregator.decide({ ...base, reason: "A" });
      aggregator.decide({ ...base, reason: "B" });
      aggregator.decide({ ...base, reason: "C" });
      assert.equal(aggregator.decide({ ...base, reason: "C" }).kind, "bump");
      assert.equal(aggregator.decide({ ...base, reason: "A" }).kind, "create", "A was evicted");
    });
  });
});
