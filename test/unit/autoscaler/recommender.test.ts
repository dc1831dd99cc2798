import assert from "node:assert/strict";
import {
  MAX_HISTORY,
  initialState,
  recommend,
  recordRecommendation,
  type Observation,
  type RecommenderSpec,
  type RecommenderState,
} from "../../../operator/src/autoscaler/recommender.ts";
import { prng } from "../controller/fake-clock.ts";

const s = 1000;
const spec: RecommenderSpec = {
  minReplicas: 1,
  maxReplicas: 10,
  target: 10,
  tolerance: 0.1,
  stableWindowMs: 60 * s,
  panicThreshold: 2,
  scaleDownDelayMs: 300 * s,
  maxScaleUpRate: 1000,
  maxScaleDownRate: 2,
};

/** A steady total request rate seen by `ready` pods. */
const rps = (total: number, ready: number, panic = total): Observation => ({
  stable: total,
  panic,
  kind: "total",
  ready,
});

/** Runs readings every 2 s from `t0`, each replica becoming ready at once; returns the last decision's state. */
function drive(state: RecommenderState, obs: (desired: number, t: number) => Observation, from: number, to: number) {
  let st = state;
  const trace: { t: number; desired: number; mode: string }[] = [];
  for (let t = from; t <= to; t += 2 * s) {
    const d = recommend(spec, st, obs(st.desired, t), t);
    st = d.state;
    trace.push({ t, desired: d.desired, mode: d.mode });
  }
  return { state: st, trace };
}

describe("recommend", function () {
  it("asks for ceil(demand / target) replicas, counting the demand per replica for per-replica metrics", function () {
    assert.equal(recommend(spec, initialState(1), rps(41, 1), 0).desired, 5);
    // 3 ready replicas each at 25 (a latency or a user's per-replica PromQL) against target 10: 8 replicas.
    const perReplica: Observation = { stable: 25, panic: 25, kind: "perReplica", ready: 3 };
    assert.equal(recommend(spec, initialState(3), perReplica, 0).desired, 8);
  });

  it("holds within the tolerance band and moves outside it", function () {
    const state = initialState(4);
    assert.equal(recommend(spec, state, rps(43.9, 4), 0).desired, 4, "+9.75%: inside");
    assert.equal(recommend(spec, state, rps(44.1, 4), 0).desired, 5, "+10.25%: outside");
    assert.equal(recommend(spec, state, rps(36.1, 4), 0).state.history.at(-1)?.replicas, 4, "-9.75%: inside");
    assert.equal(recommend(spec, state, rps(35.9, 4), 0).state.history.at(-1)?.replicas, 4 - 0, "ceil(3.59) = 4");
    assert.equal(recommend(spec, state, rps(29, 4), 0).state.history.at(-1)?.replicas, 3);
  });

  it("does not count pods that are not ready as capacity: a scale-up waiting for GPUs asks for nothing more", function () {
    // Demand of 8 replicas; only 2 ready (6 Pending for GPUs). A per-replica metric measured on the 2
    // ready pods (40 each) gives 2 × 40 / 10 = 8: the same decision, not 8 × 40 / 10 = 32.
    let state = recommend(spec, initialState(2), { stable: 40, panic: 40, kind: "perReplica", ready: 2 }, 0).state;
    assert.equal(state.desired, 8);
    for (let t = 2 * s; t < 120 * s; t += 2 * s) {
      state = recommend(spec, state, { stable: 40, panic: 40, kind: "perReplica", ready: 2 }, t).state;
      assert.equal(state.desired, 8, `t=${t}`);
    }
  });

  it("scales up at once and down only after the lower recommendation held for the scale-down delay", function () {
    let state = recommend(spec, initialState(1), rps(50, 1, 10), 0).state;
    assert.equal(state.desired, 5);
    const low = drive(state, (d) => rps(10, d), 2 * s, 298 * s);
    assert.ok(
      low.trace.every((x) => x.desired === 5),
      "nothing moves inside the delay",
    );
    state = low.state;
    const after = recommend(spec, state, rps(10, 5), 302 * s);
    assert.equal(after.desired, 3, "after the delay: down, to no fewer than half (maxScaleDownRate 2)");
    assert.equal(after.limitedBy, "ScaleDownRate");
    const next = recommend(spec, after.state, rps(10, 3), 304 * s);
    assert.equal(next.desired, 2);
    assert.equal(recommend(spec, next.state, rps(10, 2), 306 * s).desired, 1);
  });

  it("takes the highest recommendation within the delay", function () {
    let state = recommend(spec, initialState(1), rps(80, 1, 10), 0).state; // 8
    state = recommend(spec, state, rps(60, 8), 100 * s).state; // recommends 6, keeps 8
    state = recommend(spec, state, rps(20, 8), 200 * s).state; // recommends 2, keeps 8
    assert.equal(state.desired, 8);
    // The 8 was in force until 100 s, so it stays in the window until 400 s.
    assert.equal(recommend(spec, state, rps(20, 8), 398 * s).desired, 8);
    const d = recommend(spec, state, rps(20, 8), 402 * s); // the 8 left the window; the 6 (100–200 s) has not
    assert.equal(d.desired, 6);
    assert.deepEqual(d.scaleDown, { at: 500 * s, to: 2 });
  });

  it("panics on a burst over the threshold: up at once, never down inside, out a stable window after it", function () {
    let state = recommend(spec, initialState(2), rps(20, 2), 0).state;
    assert.equal(state.desired, 2);
    // Burst: the 6 s window sees 100 req/s (5× target per ready replica), the 60 s window barely moves.
    const burst = recommend(spec, state, rps(26, 2, 100), 2 * s);
    assert.equal(burst.mode, "Panic");
    assert.equal(burst.desired, 10);
    state = burst.state;
    // The burst ends; the panic window falls back below the threshold at once.
    const quiet = drive(state, (d) => rps(20, d), 4 * s, 60 * s);
    assert.ok(
      quiet.trace.every((x) => x.mode === "Panic" && x.desired === 10),
      "no scale-down while panicking",
    );
    const out = recommend(spec, quiet.state, rps(20, 10), 62 * s);
    assert.equal(out.mode, "Stable");
    assert.equal(out.desired, 10, "and the scale-down delay, counted from the panic's end, holds its replicas");
    assert.equal(recommend(spec, out.state, rps(20, 10), 360 * s).desired, 10);
    assert.equal(recommend(spec, out.state, rps(20, 10), 364 * s).desired, 5);
  });

  it("stays in panic while the burst lasts, and a new high raises replicas further", function () {
    const state = recommend(spec, initialState(1), rps(10, 1, 40), 0).state;
    assert.equal(state.desired, 4);
    // The new replicas wait for GPUs: one ready replica keeps facing 4×, then 8× the target.
    const go = drive(state, (_d, t) => rps(10, 1, t < 100 * s ? 40 : 80), 2 * s, 200 * s);
    assert.ok(go.trace.every((x) => x.mode === "Panic"));
    assert.equal(go.state.desired, 8);
  });

  it("keeps within [min, max] and says when max capped the wish", function () {
    const d = recommend(spec, initialState(1), rps(500, 1), 0);
    assert.equal(d.desired, 10);
    assert.equal(d.limitedBy, "MaxReplicas");
    assert.equal(d.wanted, 50);
    assert.equal(recommend({ ...spec, minReplicas: 3 }, initialState(3), rps(0, 3), 0).desired, 3);
  });

  it("limits a scale-up by maxScaleUpRate, at least one replica a step", function () {
    const slow = { ...spec, maxScaleUpRate: 1.5 };
    const d1 = recommend(slow, initialState(2), rps(100, 2), 0);
    assert.deepEqual([d1.desired, d1.limitedBy], [3, "ScaleUpRate"]);
    const one = recommend({ ...spec, maxScaleUpRate: 1 }, initialState(2), rps(100, 2), 0);
    assert.equal(one.desired, 3);
  });

  it("never lets exact demand round up through float noise", function () {
    // 0.3 / 0.1 is 2.9999999999999996 and 0.7 / 0.1 is 6.999999999999999 in floating point.
    const tenth = { ...spec, target: 0.1 };
    assert.equal(recommend(tenth, initialState(1), rps(0.3, 1), 0).desired, 3);
    assert.equal(recommend(tenth, initialState(1), rps(0.7, 1), 0).desired, 7);
  });

  describe("invariants over random walks (seeded)", function () {
    const random = prng(20261129);
    const randomSpec = (): RecommenderSpec => {
      const min = 1 + Math.floor(random() * 4);
      return {
        minReplicas: min,
        maxReplicas: min + Math.floor(random() * 20),
        target: 0.5 + random() * 50,
        tolerance: random() * 0.5,
        stableWindowMs: (6 + Math.floor(random() * 120)) * s,
        panicThreshold: 1 + random() * 4,
        scaleDownDelayMs: Math.floor(random() * 600) * s,
        maxScaleUpRate: 1 + random() * 10,
        maxScaleDownRate: 1 + random() * 4,
      };
    };

    it("always decides within [minReplicas, maxReplicas], and never scales down while panicking", function () {
      for (let run = 0; run < 300; run++) {
        const sp = randomSpec();
        let state = initialState(sp.minReplicas);
        for (let t = 0; t < 400 * s; t += 2 * s) {
          const ready = Math.floor(random() * (state.desired + 1));
          const obs: Observation = {
            stable: random() * sp.target * 30,
            panic: random() < 0.1 ? random() * sp.target * 100 : random() * sp.target * 30,
            kind: random() < 0.5 ? "total" : "perReplica",
            ready,
          };
          const d = recommend(sp, state, obs, t);
          assert.ok(d.desired >= sp.minReplicas && d.desired <= sp.maxReplicas, `run ${run} t ${t}: ${d.desired}`);
          if (d.mode === "Panic") assert.ok(d.desired >= state.desired, `run ${run} t ${t}: down in panic`);
          assert.ok(d.state.history.length <= MAX_HISTORY);
          state = d.state;
        }
      }
    });

    it("never changes replicas while the metric sits at target on every ready replica", function () {
      for (let run = 0; run < 300; run++) {
        const sp = randomSpec();
        const start = sp.minReplicas + Math.floor(random() * (sp.maxReplicas - sp.minReplicas + 1));
        let state = initialState(start);
        for (let t = 0; t < 400 * s; t += 2 * s) {
          const kind = random() < 0.5 ? "total" : "perReplica";
          const value = kind === "total" ? sp.target * start : sp.target;
          const d = recommend(sp, state, { stable: value, panic: value, kind, ready: start }, t);
          assert.equal(d.desired, start, `run ${run} t ${t}`);
          state = d.state;
        }
      }
    });
  });
});

describe("recordRecommendation", function () {
  it("records changes only, and drops what ended before the window", function () {
    let h = recordRecommendation([], 0, 5, 100);
    h = recordRecommendation(h, 10, 5, 100);
    assert.deepEqual(h, [{ time: 0, replicas: 5 }]);
    h = recordRecommendation(h, 20, 3, 100);
    h = recordRecommendation(h, 50, 2, 100);
    assert.equal(h.length, 3);
    // At 125 the 5 (in force until 20) ended before the window start (25): gone.
    h = recordRecommendation(h, 125, 2, 100);
    assert.deepEqual(h, [
      { time: 20, replicas: 3 },
      { time: 50, replicas: 2 },
    ]);
  });

  it("merges the oldest entries beyond the bound, keeping the higher value (never a sooner scale-down)", function () {
    let h: { time: number; replicas: number }[] = [];
    for (let i = 0; i < MAX_HISTORY + 10; i++) h = recordRecommendation(h, i, i % 2 ? 9 : 1, 10_000);
    assert.equal(h.length, MAX_HISTORY);
    assert.deepEqual(h[0], { time: 0, replicas: 9 });
  });
});
