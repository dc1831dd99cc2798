import assert from "node:assert/strict";
import { ItemExponentialBackoff } from "../../../operator/src/controller/rate-limiter.ts";
import { WorkQueue, type WorkQueueMetrics } from "../../../operator/src/controller/work-queue.ts";
import { FakeClock, flush, prng } from "./fake-clock.ts";

function queueWithClock(metrics?: WorkQueueMetrics): { queue: WorkQueue; clock: FakeClock } {
  const clock = new FakeClock();
  const queue = new WorkQueue({
    clock,
    rateLimiter: new ItemExponentialBackoff(5, 1000),
    ...(metrics ? { metrics } : {}),
  });
  return { queue, clock };
}

describe("WorkQueue", () => {
  it("collapses repeated adds of a pending key into one", async () => {
    const { queue } = queueWithClock();
    queue.add("ns/a");
    queue.add("ns/b");
    queue.add("ns/a");
    assert.equal(queue.length, 2);
    assert.equal(await queue.get(), "ns/a");
    assert.equal(await queue.get(), "ns/b");
  });

  it("does not hand out a key that a worker holds, and re-queues it once that worker is done", async () => {
    const { queue } = queueWithClock();
    queue.add("ns/a");
    const held = await queue.get();
    queue.add("ns/a");
    queue.add("ns/a");
    assert.equal(queue.length, 0, "the key is dirty, not queued, while it is held");
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await flush();
    assert.equal(second, undefined, "a second worker gets nothing while the first holds ns/a");
    queue.done(held!);
    await flush();
    assert.equal(second, "ns/a", "the adds made while it was held lead to exactly one more processing");
    queue.done("ns/a");
    assert.equal(queue.length, 0);
  });

  it("wakes a waiting worker when a key is added", async () => {
    const { queue } = queueWithClock();
    const pending = queue.get();
    queue.add("ns/a");
    assert.equal(await pending, "ns/a");
  });

  it("adds a key after its delay, and the earliest of several delays wins", async () => {
    const { queue, clock } = queueWithClock();
    queue.addAfter("ns/a", 1000);
    queue.addAfter("ns/a", 200);
    queue.addAfter("ns/a", 5000);
    clock.advance(199);
    assert.equal(queue.length, 0);
    clock.advance(1);
    assert.equal(queue.length, 1);
    assert.equal(await queue.get(), "ns/a");
    queue.done("ns/a");
    clock.advance(10_000);
    assert.equal(queue.length, 0, "the later delays were dropped, not fired");
  });

  it("backs off a failing key exponentially and resets after forget", async () => {
    const { queue, clock } = queueWithClock();
    const readyAfter: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = clock.now();
      queue.addRateLimited("ns/a");
      while (queue.length === 0) clock.advance(1);
      readyAfter.push(clock.now() - before);
      await queue.get();
      queue.done("ns/a");
    }
    assert.deepEqual(readyAfter, [5, 10, 20, 40]);
    assert.equal(queue.retries("ns/a"), 4);
    queue.forget("ns/a");
    assert.equal(queue.retries("ns/a"), 0);
  });

  it("caps a key's back-off at maxDelayMs when the caller gives one", async () => {
    const { queue, clock } = queueWithClock();
    const readyAfter: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const before = clock.now();
      queue.addRateLimited("ns/a", 30);
      while (queue.length === 0) clock.advance(1);
      readyAfter.push(clock.now() - before);
      await queue.get();
      queue.done("ns/a");
    }
    assert.deepEqual(readyAfter, [5, 10, 20, 30, 30, 30]);
  });

  it("on shutdown releases waiting workers, ignores new adds, and resolves once in-flight keys are done", async () => {
    const { queue, clock } = queueWithClock();
    queue.add("ns/a");
    queue.add("ns/b");
    queue.addAfter("ns/c", 100);
    const held = await queue.get();
    const waiting = queue.get();
    assert.equal(await waiting, "ns/b");
    const idle = queue.get();
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => (drained = true));
    assert.equal(await idle, undefined);
    assert.equal(await queue.get(), undefined);
    queue.add("ns/d");
    clock.advance(1000);
    assert.equal(queue.length, 0, "no adds, delayed or not, after shutdown");
    queue.done(held!);
    await flush();
    assert.equal(drained, false, "ns/b is still being processed");
    queue.done("ns/b");
    await drain;
    assert.equal(drained, true);
  });

  it("reports depth, adds, wait time, work duration and retries to its metrics hooks", async () => {
    const seen = { depth: [] as number[], adds: 0, waited: [] as number[], worked: [] as number[], retries: 0 };
    const { queue, clock } = queueWithClock({
      depth: (d) => seen.depth.push(d),
      added: () => seen.adds++,
      waited: (s) => seen.waited.push(s),
      worked: (s) => seen.worked.push(s),
      retried: () => seen.retries++,
    });
    queue.add("ns/a");
    queue.add("ns/a");
    clock.advance(250);
    const key = await queue.get();
    clock.advance(1500);
    queue.done(key!);
    queue.addRateLimited("ns/a");
    assert.equal(seen.adds, 2);
    assert.deepEqual(seen.waited, [0.25]);
    assert.deepEqual(seen.worked, [1.5]);
    assert.equal(seen.retries, 1);
    assert.deepEqual(seen.depth.slice(0, 2), [1, 0]);
  });

  describe("property: under random adds, delays and work times", () => {
    for (const seed of [1, 2, 3, 42, 1234]) {
      it(`never hands a key to two workers at once, and processes every key after its last add (seed ${seed})`, async () => {
        const random = prng(seed);
        const clock = new FakeClock();
        const queue = new WorkQueue({ clock, rateLimiter: new ItemExponentialBackoff(1, 50) });
        const keys = ["a", "b", "c", "d", "e"].map((k) => `ns/${k}`);
        const holding = new Set<string>();
        const lastAdd = new Map<string, number>();
        const lastStart = new Map<string, number>();
        let violations = 0;
        let step = 0;

        const worker = async (): Promise<void> => {
          for (;;) {
            const key = await queue.get();
            if (key === undefined) return;
            if (holding.has(key)) violations++;
            holding.add(key);
            lastStart.set(key, step);
            // Hold the key across a random number of scheduling rounds.
            const rounds = Math.floor(random() * 4);
            for (let i = 0; i < rounds; i++) await flush();
            holding.delete(key);
            if (random() < 0.2) queue.addRateLimited(key);
            queue.done(key);
          }
        };
        const workers = Array.from({ length: 4 }, () => worker());

        for (step = 1; step <= 400; step++) {
          const key = keys[Math.floor(random() * keys.length)]!;
          const roll = random();
          if (roll < 0.6) {
            queue.add(key);
            lastAdd.set(key, step);
          } else if (roll < 0.8) {
            queue.addAfter(key, Math.floor(random() * 20));
          }
          clock.advance(Math.floor(random() * 5));
          await flush();
        }
        // Let everything pending, delayed and retried settle.
        for (let i = 0; i < 200 && (queue.length > 0 || queue.inFlight > 0 || clock.pendingTimers > 0); i++) {
          clock.advance(100);
          await flush();
        }
        await queue.shutDownWithDrain();
        await Promise.all(workers);

        assert.equal(violations, 0, "a key was held by two workers at once");
        for (const [key, added] of lastAdd) {
          // A processing that started in the same step as the add may have read state before it; require a later start.
          assert.ok(
            (lastStart.get(key) ?? -1) >= added,
            `${key} added at step ${added} was last started at ${lastStart.get(key)}`,
          );
        }
      });
    }
  });
});
