import assert from "node:assert/strict";
import { AdmissionControl, type Admission, type AdmissionLimits } from "../../../serving-image/src/admission.ts";
import { ServingError } from "../../../serving-image/src/protocol/errors.ts";

function control(limits: Partial<AdmissionLimits> = {}, queued = { depth: 0 }): AdmissionControl {
  return new AdmissionControl(
    { maxQueue: 100, bodyMemoryBytes: 1_000, maxBodiesPerClient: 0, ...limits },
    () => queued.depth,
  );
}

/** The status and message a refusal carries. */
function refusal(admit: () => unknown): { status: number; message: string; retryAfter: number | undefined } {
  try {
    admit();
  } catch (err) {
    assert.ok(err instanceof ServingError);
    return { status: err.httpStatus, message: err.message, retryAfter: err.retryAfterSeconds };
  }
  assert.fail("expected a refusal");
}

describe("AdmissionControl", () => {
  it("refuses with 429 once bodies being read and queued requests fill the queue, and admits again when one leaves", () => {
    const queued = { depth: 1 };
    const c = control({ maxQueue: 3 }, queued);
    const a = c.admit(10);
    c.admit(10);
    assert.deepEqual(
      refusal(() => c.admit(10)),
      {
        status: 429,
        message: "The request queue is full (3 requests waiting); retry later",
        retryAfter: 1,
      },
    );
    // Its queue entry takes the slot's place: still full.
    a.enqueued();
    queued.depth = 2;
    assert.equal(refusal(() => c.admit(10)).status, 429);
    queued.depth = 1;
    c.admit(10);
  });

  it("reserves declared bytes before the body is read, refuses what would overflow the budget with 429 and a body larger than the whole budget with 413", () => {
    const c = control({ bodyMemoryBytes: 1_000 });
    const a = c.admit(600);
    assert.deepEqual(
      refusal(() => c.admit(500)),
      {
        status: 429,
        message:
          "Request bodies would exceed their memory budget of 1000 bytes (600 held, this one needs 500 more); retry later",
        retryAfter: 1,
      },
    );
    assert.deepEqual(
      refusal(() => c.admit(1_001)),
      {
        status: 413,
        message: "Request body of 1001 bytes exceeds the memory budget for request bodies (1000 bytes)",
        retryAfter: undefined,
      },
    );
    c.admit(400);
    assert.equal(c.heldBytes, 1_000);
    a.release();
    assert.equal(c.heldBytes, 400);
    c.admit(600);
  });

  it("keeps a request's bytes while it is queued and running, until it is answered", () => {
    const c = control({ bodyMemoryBytes: 1_000 });
    const a = c.admit(700);
    a.received();
    a.enqueued();
    assert.equal(c.heldBytes, 700);
    assert.equal(refusal(() => c.admit(400)).status, 429);
    a.release();
    assert.equal(c.heldBytes, 0);
  });

  it("grows a chunked body's reservation as it arrives, and refuses the chunk that would overflow the budget", () => {
    const c = control({ bodyMemoryBytes: 1_000 });
    c.admit(500);
    const chunked = c.admit(undefined);
    chunked.grow(300);
    chunked.grow(200);
    assert.equal(c.heldBytes, 1_000);
    assert.deepEqual(
      refusal(() => {
        chunked.grow(1);
      }),
      {
        status: 429,
        message:
          "Request bodies would exceed their memory budget of 1000 bytes (1000 held, this one needs 1 more); retry later",
        retryAfter: 1,
      },
    );
    chunked.release();
    assert.equal(c.heldBytes, 500);
    const alone = c.admit(undefined);
    assert.equal(
      refusal(() => {
        alone.grow(1_001);
      }).status,
      413,
      "a chunked body that could never fit",
    );
  });

  it("does not hold one client address to a share while half the queue is free (a proxy sends everything)", () => {
    const c = control({ maxQueue: 8, maxBodiesPerClient: 1 });
    for (let i = 0; i < 4; i++) c.admit(1, "10.0.0.1");
    assert.equal(refusal(() => c.admit(1, "10.0.0.1")).status, 429, "the fifth, with half the queue taken");
  });

  it("past half the queue, lets each address send only its share at once, counts addresses apart, and frees a share once a body is in", () => {
    const c = control({ maxQueue: 8, maxBodiesPerClient: 2 });
    c.admit(1);
    c.admit(1);
    c.admit(1);
    const a = c.admit(1, "10.0.0.1");
    c.admit(1, "10.0.0.1");
    assert.deepEqual(
      refusal(() => c.admit(1, "10.0.0.1")),
      {
        status: 429,
        message:
          "Client 10.0.0.1 is already sending 2 request bodies while the queue is half full (5 of 8); one client address may then send 2 at once; retry later",
        retryAfter: 1,
      },
    );
    c.admit(1, "10.0.0.2");
    a.received();
    const b = c.admit(1, "10.0.0.1");
    assert.equal(refusal(() => c.admit(1, "10.0.0.1")).status, 429);
    b.release();
    c.admit(1, "10.0.0.1");
  });

  it("has no per-client limit when maxBodiesPerClient is 0", () => {
    const c = control({ maxBodiesPerClient: 0 });
    for (let i = 0; i < 50; i++) c.admit(1, "10.0.0.1");
  });

  it("gives back exactly what was held, whatever order and however often received, enqueued and release are called", () => {
    // A fixed pseudo-random walk (reproducible): admissions and calls in any order never leak or
    // double-free slots, bytes or client shares.
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const queued = { depth: 0 };
    const c = control({ maxQueue: 8, bodyMemoryBytes: 5_000, maxBodiesPerClient: 3 }, queued);
    const live: Admission[] = [];
    for (let step = 0; step < 5_000; step++) {
      const op = random(5);
      if (op === 0 || live.length === 0) {
        try {
          const a = c.admit(random(2) === 0 ? undefined : random(2_000), `client-${random(3)}`);
          live.push(a);
        } catch (err) {
          assert.ok(err instanceof ServingError);
        }
        continue;
      }
      const a = live[random(live.length)]!;
      if (op === 1) {
        try {
          a.grow(random(500));
        } catch (err) {
          assert.ok(err instanceof ServingError);
        }
      } else if (op === 2) a.received();
      else if (op === 3) a.enqueued();
      else {
        a.release();
        live.splice(live.indexOf(a), 1);
      }
      assert.ok(c.heldBytes >= 0 && c.heldBytes <= 5_000, `held ${c.heldBytes}`);
    }
    for (const a of live) a.release();
    assert.equal(c.heldBytes, 0);
    // Every slot and client share is free again: a full queue's worth from three clients is admitted.
    for (let i = 0; i < 8; i++) c.admit(0, `client-${i % 3}`);
  });
});
