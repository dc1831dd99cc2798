import assert from "node:assert/strict";
import { BatchQueue, type BatchItem } from "../../../serving-image/src/batching/batch-queue.ts";

const item = (rows: number, key: string | undefined, enqueuedAt: number): BatchItem => ({ rows, key, enqueuedAt });

describe("BatchQueue", () => {
  it("waits for the oldest request's delay before releasing a partial batch", () => {
    const q = new BatchQueue({ maxBatchSize: 8, maxDelayMs: 5, maxQueue: 10 });
    q.offer(item(1, "a", 100));
    q.offer(item(2, "a", 102));
    assert.deepEqual(q.next(103), { kind: "wait", until: 105 });
    const next = q.next(105);
    assert.equal(next.kind, "batch");
    assert.equal(next.kind === "batch" && next.rows, 3);
    assert.equal(q.depth, 0);
  });

  it("releases a full batch at once and leaves the request that would overflow it queued", () => {
    const q = new BatchQueue({ maxBatchSize: 4, maxDelayMs: 1000, maxQueue: 10 });
    const a = item(3, "k", 0);
    const b = item(2, "k", 1);
    q.offer(a);
    q.offer(b);
    const next = q.next(2);
    assert.deepEqual(next, { kind: "batch", items: [a], rows: 3 });
    assert.equal(q.depth, 1);
  });

  it("only batches requests with equal keys, keeping the others in arrival order", () => {
    const q = new BatchQueue({ maxBatchSize: 8, maxDelayMs: 0, maxQueue: 10 });
    const a1 = item(1, "a", 0);
    const b1 = item(1, "b", 0);
    const a2 = item(1, "a", 0);
    for (const i of [a1, b1, a2]) q.offer(i);
    assert.deepEqual(q.next(0), { kind: "batch", items: [a1, a2], rows: 2 });
    assert.deepEqual(q.next(0), { kind: "batch", items: [b1], rows: 1 });
    assert.deepEqual(q.next(0), { kind: "empty" });
  });

  it("runs an unbatchable request (no key) alone and without waiting", () => {
    const q = new BatchQueue({ maxBatchSize: 8, maxDelayMs: 50, maxQueue: 10 });
    const solo = item(1, undefined, 0);
    q.offer(solo);
    q.offer(item(1, undefined, 0));
    assert.deepEqual(q.next(0), { kind: "batch", items: [solo], rows: 1 });
  });

  it("runs a request larger than the maximum batch size on its own", () => {
    const q = new BatchQueue({ maxBatchSize: 4, maxDelayMs: 50, maxQueue: 10 });
    const big = item(10, "k", 0);
    q.offer(big);
    assert.deepEqual(q.next(0), { kind: "batch", items: [big], rows: 10 });
  });

  it("flushes a partial batch without waiting while draining", () => {
    const q = new BatchQueue({ maxBatchSize: 8, maxDelayMs: 50, maxQueue: 10 });
    q.offer(item(1, "k", 0));
    assert.equal(q.next(1, true).kind, "batch");
  });

  it("refuses requests beyond maxQueue and accepts again after one leaves", () => {
    const q = new BatchQueue({ maxBatchSize: 8, maxDelayMs: 0, maxQueue: 2 });
    const a = item(1, "k", 0);
    assert.equal(q.offer(a), true);
    assert.equal(q.offer(item(1, "k", 0)), true);
    assert.equal(q.offer(item(1, "k", 0)), false);
    assert.equal(q.remove(a), true);
    assert.equal(q.remove(a), false);
    assert.equal(q.offer(item(1, "k", 0)), true);
  });

  it("never releases more rows than maxBatchSize unless a single request is larger (property over random queues)", () => {
    let seed = 1;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const max = 1 + rand(16);
      const q = new BatchQueue({ maxBatchSize: max, maxDelayMs: rand(3), maxQueue: 64 });
      const offered: BatchItem[] = [];
      for (let i = 0; i < 1 + rand(40); i++) {
        const it = item(1 + rand(6), ["a", "b", undefined][rand(3)], i);
        if (q.offer(it)) offered.push(it);
      }
      const seen: BatchItem[] = [];
      for (let now = 0; seen.length < offered.length; now++) {
        const next = q.next(now);
        if (next.kind !== "batch") continue;
        const rows = next.items.reduce((s, i) => s + i.rows, 0);
        assert.equal(rows, next.rows);
        assert.ok(rows <= max || next.items.length === 1, `batch of ${rows} rows over max ${max}`);
        assert.ok(next.items.every((i) => i.key === next.items[0]!.key));
        seen.push(...next.items);
      }
      assert.equal(new Set(seen).size, offered.length, "every request runs exactly once");
    }
  });
});
