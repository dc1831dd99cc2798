/**
 * status.autoscaling: what the autoscaler writes (its decision in words and numbers) and reads back
 * after a restart or a change of leader (its state). Also decides whether a new status is worth a
 * write: a decision that did not change is not one, so a steady load makes no writes. Pure.
 */
import type { Autoscaling, AutoscalingStatus, HoldingReason, MetricType, ModelDeployment } from "../api/index.ts";
import { formatMetric, formatNumber, type QueryWindows } from "./queries.ts";
import { clamp, initialState, type Decision, type RecommenderSpec, type RecommenderState } from "./recommender.ts";

/** spec.autoscaling with its defaults (the API server defaults them too; this covers older objects). */
export function recommenderSpec(a: Autoscaling): RecommenderSpec {
  const min = a.minReplicas ?? 1;
  return {
    minReplicas: min,
    maxReplicas: Math.max(min, a.maxReplicas),
    target: a.metric.target,
    tolerance: a.tolerance ?? 0.1,
    stableWindowMs: (a.stableWindowSeconds ?? 60) * 1000,
    panicThreshold: a.panicThreshold ?? 2,
    scaleDownDelayMs: (a.scaleDownDelaySeconds ?? 300) * 1000,
    maxScaleUpRate: a.maxScaleUpRate ?? 1000,
    maxScaleDownRate: a.maxScaleDownRate ?? 2,
  };
}

/** The windows spec.autoscaling asks for, in seconds. */
export function requestedWindows(a: Autoscaling): QueryWindows {
  return { stableSeconds: a.stableWindowSeconds ?? 60, panicSeconds: a.panicWindowSeconds ?? 6 };
}

const ms = (t: string | undefined): number | undefined => {
  const n = t === undefined ? NaN : Date.parse(t);
  return Number.isFinite(n) ? n : undefined;
};

/** RFC 3339 in whole seconds, as metav1.Time is written. */
export function isoSeconds(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * The recommender's state as the last status describes it. A panic's last trigger is not stored
 * (it moves on every reading over the threshold, and a write per reading is what we avoid): it is
 * taken as the later of the panic's start and the last scale, so after a restart a panic that is
 * still over the threshold continues, and one that is not ends no later than it would have.
 */
export function stateFromStatus(md: ModelDeployment, spec: RecommenderSpec): RecommenderState {
  const s = md.status?.autoscaling;
  const desired = clamp(s?.desiredReplicas ?? spec.minReplicas, spec.minReplicas, spec.maxReplicas);
  if (!s) return initialState(desired);
  const panicking = s.mode === "Panic" && ms(s.panicSince) !== undefined;
  const panicSince = panicking ? ms(s.panicSince) : undefined;
  const lastScaleTime = ms(s.lastScaleTime);
  return {
    desired,
    panicking,
    panicSince,
    lastPanicTrigger: panicking ? Math.max(panicSince ?? 0, lastScaleTime ?? 0) : undefined,
    lastScaleTime,
    history: (s.recommendations ?? [])
      .map((r) => ({ time: ms(r.time), replicas: r.replicas }))
      .filter((r): r is { time: number; replicas: number } => r.time !== undefined)
      .sort((a, b) => a.time - b.time),
  };
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

/** The decision in words: the metric against its target, and what made the count what it is. */
export function decisionReason(
  type: MetricType | undefined,
  spec: RecommenderSpec,
  d: Decision,
  windows: QueryWindows,
  panicWindowEmpty: boolean,
): string {
  const target = formatMetric(type, spec.target);
  const stable = `${formatMetric(type, d.perReplica.stable)} per replica over ${windows.stableSeconds}s (target ${target})`;
  const parts: string[] = [];
  if (d.mode === "Panic") {
    const times = formatNumber(d.perReplica.panic / spec.target);
    parts.push(
      `Panic: ${formatMetric(type, d.perReplica.panic)} per replica over ${windows.panicSeconds}s, ${times}× target ${target} (threshold ${formatNumber(spec.panicThreshold)}×); no scale-down while it lasts`,
    );
    parts.push(stable);
  } else {
    parts.push(d.withinTolerance ? `${stable}, within ${formatNumber(spec.tolerance * 100)}% of target` : stable);
  }
  let outcome = plural(d.desired, "replica");
  if (d.limitedBy === "MaxReplicas") outcome += ` (wants ${d.wanted}, capped at maxReplicas ${spec.maxReplicas})`;
  else if (d.limitedBy === "ScaleUpRate")
    outcome += ` (wants ${d.wanted}; scale-up rate limited to ×${formatNumber(spec.maxScaleUpRate)} a step)`;
  else if (d.limitedBy === "ScaleDownRate")
    outcome += ` (on the way down; scale-down rate limited to ÷${formatNumber(spec.maxScaleDownRate)} a step)`;
  else if (d.desired === spec.minReplicas && d.wanted < spec.minReplicas) outcome += " (minReplicas)";
  if (d.scaleDown)
    outcome += `; ${d.scaleDown.to} recommended, kept until ${isoSeconds(d.scaleDown.at)} by scaleDownDelaySeconds ${spec.scaleDownDelayMs / 1000}`;
  parts.push(outcome);
  if (panicWindowEmpty)
    parts.push(
      `the ${windows.panicSeconds}s panic window held no samples, so bursts are judged over the stable window ` +
        "(scrape the serving pods more often, or raise --prometheus-scrape-interval-seconds)",
    );
  return fit(parts.join(": "));
}

/** status.reason holds at most 1024 characters. */
function fit(s: string): string {
  return s.length <= 1024 ? s : `${s.slice(0, 1023)}…`;
}

/** status.autoscaling for a decision. */
export function decisionStatus(
  type: MetricType | undefined,
  spec: RecommenderSpec,
  d: Decision,
  windows: QueryWindows,
  panicWindowEmpty: boolean,
  now: number,
): AutoscalingStatus {
  const s = d.state;
  return {
    mode: d.mode,
    metricType: type ?? "RequestsPerSecond",
    currentMetric: round(d.perReplica.stable),
    panicMetric: round(d.perReplica.panic),
    target: spec.target,
    desiredReplicas: d.desired,
    ...(d.limitedBy ? { limitedBy: d.limitedBy } : {}),
    lastEvaluationTime: isoSeconds(now),
    ...(s.lastScaleTime !== undefined ? { lastScaleTime: isoSeconds(s.lastScaleTime) } : {}),
    ...(s.panicking && s.panicSince !== undefined ? { panicSince: isoSeconds(s.panicSince) } : {}),
    reason: decisionReason(type, spec, d, windows, panicWindowEmpty),
    recommendations: s.history.map((r) => ({ time: isoSeconds(r.time), replicas: r.replicas })),
  };
}

/**
 * status.autoscaling while the metric cannot be read: the replicas stay where they are (never
 * down to minReplicas for want of data), with the cause and since when. The history and the last
 * metric values are kept, so the scale-down delay is not lost.
 */
export function holdingStatus(
  a: Autoscaling,
  spec: RecommenderSpec,
  state: RecommenderState,
  previous: AutoscalingStatus | undefined,
  problem: { reason: HoldingReason; message: string },
  since: number,
): AutoscalingStatus {
  const holdingSince =
    previous?.mode === "Holding" && previous.holdingSince !== undefined ? previous.holdingSince : isoSeconds(since);
  return {
    mode: "Holding",
    metricType: a.metric.type ?? "RequestsPerSecond",
    ...(previous?.currentMetric !== undefined ? { currentMetric: previous.currentMetric } : {}),
    ...(previous?.panicMetric !== undefined ? { panicMetric: previous.panicMetric } : {}),
    target: spec.target,
    desiredReplicas: state.desired,
    ...(previous?.lastEvaluationTime !== undefined ? { lastEvaluationTime: previous.lastEvaluationTime } : {}),
    ...(state.lastScaleTime !== undefined ? { lastScaleTime: isoSeconds(state.lastScaleTime) } : {}),
    holdingSince,
    holdingReason: problem.reason,
    reason: fit(`Holding ${plural(state.desired, "replica")} since ${holdingSince}: ${problem.message}`),
    recommendations: state.history.map((r) => ({ time: isoSeconds(r.time), replicas: r.replicas })),
  };
}

function round(n: number): number {
  return Number(n.toPrecision(6));
}

/**
 * True when `next` is `previous` without some of its oldest entries: recommendations that left the
 * scale-down window. Their removal changes no decision (they are pruned again when read back), so
 * it is not worth a write on its own — a steady load would otherwise cost one write a delay after
 * every change.
 */
function expiredOnly(
  previous: NonNullable<AutoscalingStatus["recommendations"]>,
  next: NonNullable<AutoscalingStatus["recommendations"]>,
): boolean {
  const dropped = previous.length - next.length;
  return dropped >= 0 && JSON.stringify(previous.slice(dropped)) === JSON.stringify(next);
}

/**
 * Whether `next` is worth writing over `previous`: the decision, the mode, a limit, a new
 * recommendation, a panic or a holding cause changed, or the stable metric moved by more than the tolerance band
 * (of the target) since it was last written. Timestamps and wording alone are not.
 */
export function worthWriting(
  previous: AutoscalingStatus | undefined,
  next: AutoscalingStatus,
  tolerance: number,
): boolean {
  if (!previous) return true;
  const key = (s: AutoscalingStatus) =>
    JSON.stringify([
      s.mode,
      s.metricType,
      s.target,
      s.desiredReplicas,
      s.limitedBy,
      s.panicSince,
      s.holdingReason,
      s.holdingSince,
      s.lastScaleTime,
    ]);
  if (key(previous) !== key(next)) return true;
  if (!expiredOnly(previous.recommendations ?? [], next.recommendations ?? [])) return true;
  if (next.mode === "Holding") return false;
  // A move smaller than the tolerance band cannot change a decision; the metric shown in status
  // may lag by that much (the operator's own metrics have it live).
  const band = Math.max(tolerance, 0.02);
  const moved = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? a !== b : Math.abs(a - b) > band * (next.target ?? 1);
  // The panic window is short and noisy; it is written along with the rest, never on its own.
  return moved(previous.currentMetric, next.currentMetric);
}
