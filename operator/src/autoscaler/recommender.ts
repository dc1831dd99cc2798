/**
 * The autoscaler's recommender: from one reading of the metric and the previous state, the next
 * replica count and why. Knative's KPA (stable and panic windows) with HPA's tolerance band,
 * stabilisation and rate limits. Pure: time is an argument, state goes in and comes out.
 *
 * Order of a decision:
 *   1. demand in replicas from the stable window; inside the tolerance band it is the current count;
 *   2. panic: starts when the panic-window demand per ready replica reaches panicThreshold × target,
 *      and then replicas only go up; it ends a stable window after the last time it was reached;
 *   3. the recommendation, bounded by [min, max], joins a history of changes; a scale-up happens at
 *      once, a scale-down only to the highest recommendation of the last scaleDownDelaySeconds;
 *   4. rate limits: up to current × maxScaleUpRate, down to no fewer than current / maxScaleDownRate
 *      (at least one replica a step either way); then [min, max] again.
 */
import type { AutoscalingLimit, AutoscalingMode } from "../api/index.ts";
import type { MetricKind } from "./queries.ts";

/** spec.autoscaling with its defaults, times in milliseconds. */
export interface RecommenderSpec {
  minReplicas: number;
  maxReplicas: number;
  target: number;
  tolerance: number;
  stableWindowMs: number;
  panicThreshold: number;
  scaleDownDelayMs: number;
  maxScaleUpRate: number;
  maxScaleDownRate: number;
}

/** A recommendation in force from `time` until the next entry's time. */
export interface Recommendation {
  time: number;
  replicas: number;
}

/** What the recommender remembers between decisions (recovered from status after a restart). */
export interface RecommenderState {
  /** The current decision: what the Deployment is sized to. */
  desired: number;
  panicking: boolean;
  /** When the current panic started. */
  panicSince?: number | undefined;
  /** The last time the panic threshold was reached; panic ends a stable window after it. */
  lastPanicTrigger?: number | undefined;
  lastScaleTime?: number | undefined;
  /** Changes of the recommendation, oldest first, pruned to the scale-down delay. */
  history: readonly Recommendation[];
}

/** One reading of the metric. */
export interface Observation {
  /** The stable-window query's value. */
  stable: number;
  /** The panic-window query's value; the stable value when the panic window had no data. */
  panic: number;
  kind: MetricKind;
  /** Ready serving pods: the capacity the metric was measured on. Pending and starting pods are not capacity. */
  ready: number;
}

export interface Decision {
  state: RecommenderState;
  desired: number;
  mode: Exclude<AutoscalingMode, "Holding">;
  /** The metric per ready replica over each window (what a person compares with the target). */
  perReplica: { stable: number; panic: number };
  /** Replicas the demand asks for before any bound or limit (ceil of the demand; the current count within tolerance). */
  wanted: number;
  withinTolerance: boolean;
  limitedBy?: AutoscalingLimit | undefined;
  /** Set while the scale-down delay keeps more replicas than recommended: when that ends, and to what. */
  scaleDown?: { at: number; to: number } | undefined;
}

/** Most history entries kept (status.autoscaling.recommendations has maxItems 128). */
export const MAX_HISTORY = 128;

/** Float noise must not turn "exactly 3 replicas of demand" into 4. */
const EPSILON = 1e-9;

export function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

function ceilReplicas(demand: number): number {
  return Math.max(0, Math.ceil(demand - EPSILON * Math.max(1, Math.abs(demand))));
}

/** The state to start from when nothing is known: the current size, no panic, no history. */
export function initialState(desired: number): RecommenderState {
  return { desired, panicking: false, history: [] };
}

/**
 * `history` with `replicas` recorded at `now` if it differs from the last entry, without entries that
 * ended before the window, and merged (keeping the higher value, so never scaling down sooner) to
 * at most MAX_HISTORY entries.
 */
export function recordRecommendation(
  history: readonly Recommendation[],
  now: number,
  replicas: number,
  windowMs: number,
): Recommendation[] {
  const out = [...history];
  if (out.length === 0 || out[out.length - 1]!.replicas !== replicas) out.push({ time: now, replicas });
  const windowStart = now - windowMs;
  while (out.length >= 2 && out[1]!.time <= windowStart) out.shift();
  while (out.length > MAX_HISTORY) {
    const [a, b] = out as [Recommendation, Recommendation];
    out.splice(0, 2, { time: a.time, replicas: Math.max(a.replicas, b.replicas) });
  }
  return out;
}

/**
 * While the delay keeps `current` replicas although the latest recommendation is lower: when every
 * recommendation at or above `current` has left the window, and the highest that remains then.
 */
function pendingScaleDown(history: readonly Recommendation[], current: number, delayMs: number) {
  let last = -1;
  for (let i = 0; i < history.length; i++) if (history[i]!.replicas >= current) last = i;
  if (last < 0 || last === history.length - 1) return undefined;
  const rest = history.slice(last + 1).map((r) => r.replicas);
  return { at: history[last + 1]!.time + delayMs, to: Math.max(...rest) };
}

/** The next decision for one reading of the metric at `now`. */
export function recommend(spec: RecommenderSpec, state: RecommenderState, obs: Observation, now: number): Decision {
  const { minReplicas: min, maxReplicas: max } = spec;
  const current = clamp(state.desired, min, max);
  const capacity = Math.max(obs.ready, 1);
  const demandOf = (v: number) => (obs.kind === "total" ? v / spec.target : (v * capacity) / spec.target);
  const perReplicaOf = (v: number) => (obs.kind === "total" ? v / capacity : v);
  const stableDemand = demandOf(obs.stable);
  const panicDemand = demandOf(obs.panic);

  const withinTolerance = Math.abs(stableDemand / current - 1) <= spec.tolerance + EPSILON;
  const stableWanted = withinTolerance ? current : ceilReplicas(stableDemand);

  // Panic: the burst is measured against the replicas that can serve it now.
  const overThreshold = panicDemand / capacity >= spec.panicThreshold - EPSILON && panicDemand > 0;
  let { panicking, panicSince, lastPanicTrigger } = state;
  if (overThreshold) {
    if (!panicking) panicSince = now;
    panicking = true;
    lastPanicTrigger = now;
  } else if (panicking && now - (lastPanicTrigger ?? now) >= spec.stableWindowMs) {
    panicking = false;
    panicSince = undefined;
    lastPanicTrigger = undefined;
  }
  const wanted = panicking ? Math.max(stableWanted, ceilReplicas(panicDemand), current) : stableWanted;
  const recommendation = clamp(wanted, min, max);
  const history = recordRecommendation(state.history, now, recommendation, spec.scaleDownDelayMs);

  // Up at once; down only as far as the highest recommendation still within the delay allows.
  let desired =
    recommendation >= current ? recommendation : Math.min(current, Math.max(...history.map((h) => h.replicas)));
  let limitedBy: AutoscalingLimit | undefined;
  const upLimit = Math.max(Math.ceil(current * spec.maxScaleUpRate - EPSILON), current + 1);
  const downLimit = Math.min(Math.ceil(current / spec.maxScaleDownRate - EPSILON), current - 1);
  if (desired > upLimit) {
    desired = upLimit;
    limitedBy = "ScaleUpRate";
  } else if (desired < downLimit) {
    desired = downLimit;
    limitedBy = "ScaleDownRate";
  }
  desired = clamp(desired, min, max);
  if (wanted > max && desired === max) limitedBy = "MaxReplicas";

  const scaleDown = desired > recommendation ? pendingScaleDown(history, desired, spec.scaleDownDelayMs) : undefined;
  return {
    state: {
      desired,
      panicking,
      panicSince,
      lastPanicTrigger,
      lastScaleTime: desired !== state.desired ? now : state.lastScaleTime,
      history,
    },
    desired,
    mode: panicking ? "Panic" : "Stable",
    perReplica: { stable: perReplicaOf(obs.stable), panic: perReplicaOf(obs.panic) },
    wanted,
    withinTolerance,
    limitedBy,
    scaleDown,
  };
}
