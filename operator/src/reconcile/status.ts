/**
 * A ModelDeployment's status, computed from what the operator observed: its Deployment, the
 * serving pods and any child it could not take. Each condition is an ordered chain of named
 * predicates (cert-manager style): the first that matches decides status, reason and message, so
 * the chain reads like the specification of the condition. Pure; the clock is an argument.
 */
import type { V1ContainerStatus, V1Deployment, V1Pod } from "@kubernetes/client-node";
import {
  ConditionTypes,
  Reasons,
  type Condition,
  type ConditionType,
  type ModelDeployment,
  type ModelDeploymentStatus,
} from "../api/index.ts";
import { ContainerNames, TerminationPrefixes } from "../../../serving-image/src/contract.ts";
import { desiredReplicas } from "./desired-deployment.ts";
import { endpointOf } from "./desired-service.ts";
import { selectorString } from "./labels.ts";

/** A child that carries our name but is not controlled by this ModelDeployment. */
export interface ChildConflict {
  kind: string;
  name: string;
}

export interface Observed {
  /** Our Deployment, if it exists. */
  deployment: V1Deployment | undefined;
  /** Pods matching the ModelDeployment's selector (all ReplicaSets). */
  pods: readonly V1Pod[];
  conflicts: readonly ChildConflict[];
  /** The API server refused to apply a child. */
  applyError?: ApplyError | undefined;
}

export interface ApplyError {
  /** "The API server refused the Deployment: …", quoting the server. */
  message: string;
  /**
   * 403: forbidden by an admission policy, a quota or RBAC, which can change without the spec
   * changing (retried); otherwise the spec produced an invalid child (400/422: retried when it changes).
   */
  forbidden: boolean;
}

export interface Verdict {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/** A named predicate: returns a verdict when it applies, undefined to let the next one decide. */
interface Rule {
  name: string;
  when: (f: Facts) => Verdict | undefined;
}

/** Facts derived once from the observation, shared by every rule. */
interface Facts {
  md: ModelDeployment;
  observed: Observed;
  desired: number;
  ready: number;
  updated: number;
  unscheduled: { pod: string; message: string }[];
  fetchFailure: { pod: string; message: string } | undefined;
  crashLoop: { pod: string; container: string; restarts: number; message: string } | undefined;
  /** The serving container's own account of why the model did not load (its termination message). */
  loadFailure: { pod: string; message: string } | undefined;
  imagePull: { pod: string; message: string } | undefined;
  anyServing: boolean;
  rolloutObserved: boolean;
  deadlineExceeded: string | undefined;
}

function terminatedOf(s: V1ContainerStatus) {
  return s.state?.terminated ?? s.lastState?.terminated;
}

function oneLine(s: string | undefined, max = 512): string {
  const t = (s ?? "").trim().split("\n").filter(Boolean).pop() ?? "";
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

function gatherFacts(md: ModelDeployment, observed: Observed): Facts {
  const d = observed.deployment;
  const desired = desiredReplicas(md);
  const live = observed.pods.filter((p) => !p.metadata?.deletionTimestamp);
  const unscheduled = live
    .map((p) => ({ p, c: p.status?.conditions?.find((c) => c.type === "PodScheduled") }))
    .filter(({ c }) => c?.status === "False")
    .map(({ p, c }) => ({ pod: p.metadata!.name!, message: oneLine(c!.message, 1024) }));
  let fetchFailure: Facts["fetchFailure"];
  let crashLoop: Facts["crashLoop"];
  let loadFailure: Facts["loadFailure"];
  let imagePull: Facts["imagePull"];
  for (const p of live) {
    const pod = p.metadata!.name!;
    for (const s of p.status?.initContainerStatuses ?? []) {
      const t = terminatedOf(s);
      if (s.name === ContainerNames.fetch && t && t.exitCode !== 0 && !fetchFailure) {
        fetchFailure = { pod, message: oneLine(t.message) || `fetch exited with code ${t.exitCode}` };
      }
    }
    for (const s of [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]) {
      const w = s.state?.waiting;
      if (w && /ErrImagePull|ImagePullBackOff|InvalidImageName/.test(w.reason ?? "") && !imagePull) {
        imagePull = { pod, message: `${w.reason ?? ""}: ${oneLine(w.message)}` };
      }
    }
    for (const s of p.status?.containerStatuses ?? []) {
      const t = s.name === ContainerNames.serve ? terminatedOf(s) : undefined;
      const cannotLoad = t !== undefined && t.exitCode !== 0 && t.message?.startsWith(TerminationPrefixes.loadFailed);
      if (cannotLoad && !loadFailure) loadFailure = { pod, message: oneLine(t.message) };
      // A model that cannot load is a model problem, reported once (in ModelAvailable), like a failed fetch.
      if (
        s.name === ContainerNames.serve &&
        s.state?.waiting?.reason === "CrashLoopBackOff" &&
        !cannotLoad &&
        !crashLoop
      ) {
        crashLoop = {
          pod,
          container: s.name,
          restarts: s.restartCount,
          message: oneLine(s.lastState?.terminated?.message),
        };
      }
    }
  }
  const generation = d?.metadata?.generation ?? 0;
  const progressing = d?.status?.conditions?.find((c) => c.type === "Progressing");
  return {
    md,
    observed,
    desired,
    ready: d?.status?.readyReplicas ?? 0,
    updated: d?.status?.updatedReplicas ?? 0,
    unscheduled,
    fetchFailure,
    crashLoop,
    loadFailure,
    imagePull,
    anyServing: live.some((p) => p.status?.containerStatuses?.some((s) => s.name === ContainerNames.serve && s.ready)),
    rolloutObserved: d !== undefined && (d.status?.observedGeneration ?? 0) >= generation,
    deadlineExceeded: progressing?.reason === "ProgressDeadlineExceeded" ? (progressing.message ?? "") : undefined,
  };
}

const conflictMessage = (c: readonly ChildConflict[], ns: string) =>
  c.map((x) => `${x.kind} ${ns}/${x.name} exists and is not controlled by this ModelDeployment`).join("; ") +
  "; delete it or rename the ModelDeployment";

const schedulingMessage = (f: Facts) =>
  `${f.unscheduled.length}/${f.observed.pods.length} pods cannot be scheduled: ${f.unscheduled[0]!.message}`;

/** The condition chains; order within a chain is priority. */
const chains: Record<ConditionType, Rule[]> = {
  ScalingActive: [
    {
      // The seam for the autoscaler: until it runs, say so rather than leave autoscaling silent.
      name: "the autoscaler is not part of this operator version",
      when: (f) => ({
        status: "False",
        reason: Reasons.ScalingActive.AutoscalerNotRunning,
        message: `This maas-operator version does not run the autoscaler yet: holding ${f.desired} replicas (minReplicas, or the last recorded decision)`,
      }),
    },
  ],
  Degraded: [
    {
      name: "a child with our name belongs to someone else",
      when: (f) =>
        f.observed.conflicts.length
          ? {
              status: "True",
              reason: Reasons.Degraded.ChildConflict,
              message: conflictMessage(f.observed.conflicts, f.md.metadata.namespace!),
            }
          : undefined,
    },
    {
      name: "the API server refused a child",
      when: (f) =>
        f.observed.applyError
          ? {
              status: "True",
              reason: f.observed.applyError.forbidden ? Reasons.Degraded.ApplyForbidden : Reasons.Degraded.InvalidSpec,
              message: f.observed.applyError.message,
            }
          : undefined,
    },
    {
      name: "the serving container crash loops",
      when: (f) =>
        f.crashLoop
          ? {
              status: "True",
              reason: Reasons.Degraded.CrashLooping,
              message: `Container ${f.crashLoop.container} of pod ${f.crashLoop.pod} is crash looping (${f.crashLoop.restarts} restarts)${f.crashLoop.message ? ": " + f.crashLoop.message : ""}`,
            }
          : undefined,
    },
    {
      name: "the image cannot be pulled",
      when: (f) =>
        f.imagePull
          ? {
              status: "True",
              reason: Reasons.Degraded.ImagePullFailed,
              message: `Pod ${f.imagePull.pod}: ${f.imagePull.message}`,
            }
          : undefined,
    },
    { name: "otherwise", when: () => ({ status: "False", reason: Reasons.Degraded.AsExpected, message: "" }) },
  ],
  Scheduled: [
    {
      name: "pods wait for GPUs",
      when: (f) =>
        f.unscheduled.some((u) => u.message.includes("nvidia.com/gpu"))
          ? { status: "False", reason: Reasons.Scheduled.InsufficientGPU, message: schedulingMessage(f) }
          : undefined,
    },
    {
      name: "pods are unschedulable for another reason",
      when: (f) =>
        f.unscheduled.length
          ? { status: "False", reason: Reasons.Scheduled.Unschedulable, message: schedulingMessage(f) }
          : undefined,
    },
    {
      name: "otherwise",
      when: (f) => ({
        status: "True",
        reason: Reasons.Scheduled.PodsScheduled,
        message: `${f.observed.pods.length} pods scheduled`,
      }),
    },
  ],
  ModelAvailable: [
    {
      name: "a replica serves the model",
      when: (f) =>
        f.anyServing
          ? { status: "True", reason: Reasons.ModelAvailable.ModelLoaded, message: "Model loaded and serving" }
          : undefined,
    },
    {
      name: "the model's checksum did not match",
      when: (f) =>
        f.fetchFailure && /sha256 mismatch/i.test(f.fetchFailure.message)
          ? { status: "False", reason: Reasons.ModelAvailable.ChecksumMismatch, message: f.fetchFailure.message }
          : undefined,
    },
    {
      name: "the model fetch failed",
      when: (f) =>
        f.fetchFailure
          ? { status: "False", reason: Reasons.ModelAvailable.ModelFetchFailed, message: f.fetchFailure.message }
          : undefined,
    },
    {
      name: "the serving container could not load the model",
      when: (f) =>
        f.loadFailure
          ? { status: "False", reason: Reasons.ModelAvailable.ModelLoadFailed, message: f.loadFailure.message }
          : undefined,
    },
    {
      name: "otherwise the model is on its way",
      when: (f) => ({
        status: "Unknown",
        reason: Reasons.ModelAvailable.ModelLoading,
        message: f.observed.pods.length
          ? "Waiting for a replica to fetch, load and warm up the model"
          : "No serving pods exist yet",
      }),
    },
  ],
  Progressing: [
    {
      name: "the Deployment does not exist yet",
      when: (f) =>
        f.observed.deployment
          ? undefined
          : { status: "True", reason: Reasons.Progressing.RolloutInProgress, message: "Creating Deployment" },
    },
    {
      name: "the rollout passed its deadline",
      when: (f) =>
        f.deadlineExceeded !== undefined
          ? { status: "False", reason: Reasons.Progressing.ProgressDeadlineExceeded, message: f.deadlineExceeded }
          : undefined,
    },
    {
      name: "a rollout is under way",
      when: (f) => {
        const total = f.observed.deployment?.status?.replicas ?? 0;
        const available = f.observed.deployment?.status?.availableReplicas ?? 0;
        if (f.rolloutObserved && f.updated >= f.desired && total <= f.desired && available >= f.desired)
          return undefined;
        return {
          status: "True",
          reason: Reasons.Progressing.RolloutInProgress,
          message: `${f.updated}/${f.desired} replicas updated, ${available} available`,
        };
      },
    },
    {
      name: "otherwise",
      when: (f) => ({
        status: "False",
        reason: Reasons.Progressing.RolloutComplete,
        message: `${f.desired} replicas up to date`,
      }),
    },
  ],
  Ready: [
    {
      name: "a child could not be applied",
      when: (f) =>
        f.observed.conflicts.length || f.observed.applyError
          ? {
              status: "False",
              reason: Reasons.Ready.ReconcileFailed,
              message:
                f.observed.applyError?.message ?? conflictMessage(f.observed.conflicts, f.md.metadata.namespace!),
            }
          : undefined,
    },
    {
      name: "scaled to zero",
      when: (f) =>
        f.desired === 0 && f.rolloutObserved && (f.observed.deployment?.status?.replicas ?? 0) === 0
          ? { status: "True", reason: Reasons.Ready.ScaledToZero, message: "Scaled to zero replicas" }
          : undefined,
    },
    {
      name: "every desired replica is updated and ready",
      when: (f) =>
        f.desired > 0 && f.rolloutObserved && f.updated >= f.desired && f.ready >= f.desired
          ? {
              status: "True",
              reason: Reasons.Ready.AllReplicasReady,
              message: `${f.ready}/${f.desired} replicas ready`,
            }
          : undefined,
    },
    {
      name: "otherwise, say what holds the replicas back",
      when: (f) => {
        const cause = f.fetchFailure
          ? TerminationPrefixes.fetchFailed + f.fetchFailure.message.replace(/^model fetch failed:\s*/i, "")
          : f.loadFailure
            ? f.loadFailure.message
            : f.unscheduled.length
              ? schedulingMessage(f)
              : f.crashLoop
                ? `container ${f.crashLoop.container} is crash looping`
                : f.imagePull
                  ? f.imagePull.message
                  : undefined;
        return {
          status: "False",
          reason: Reasons.Ready.ReplicasNotReady,
          message: `${f.ready}/${f.desired} replicas ready${cause ? ": " + cause : ""}`,
        };
      },
    },
  ],
};

/** Evaluates one chain: the first matching rule's verdict. */
export function evaluate(type: ConditionType, f: Facts): Verdict & { rule: string } {
  for (const r of chains[type]) {
    const v = r.when(f);
    if (v) return { ...v, rule: r.name };
  }
  throw new Error(`condition chain ${type} has no default rule`);
}

export interface StatusEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

/** Which transitions are worth an Event: reaching Ready, and each way of going wrong. */
function eventFor(type: ConditionType, v: Verdict): StatusEvent | undefined {
  if (type === "Ready" && v.status === "True")
    return { type: "Normal", reason: v.reason, message: `ModelDeployment became Ready: ${v.message}` };
  if (type === "Degraded" && v.status === "True") return { type: "Warning", reason: v.reason, message: v.message };
  if ((type === "Scheduled" || type === "ModelAvailable") && v.status === "False") {
    return { type: "Warning", reason: v.reason, message: v.message };
  }
  if (type === "Progressing" && v.reason === Reasons.Progressing.ProgressDeadlineExceeded) {
    return { type: "Warning", reason: v.reason, message: v.message };
  }
  return undefined;
}

const order: ConditionType[] = ["Ready", "ModelAvailable", "Scheduled", "Progressing", "Degraded"];

/**
 * The status fields the reconciler owns, and the Events to record. Conditions keep their
 * lastTransitionTime unless their status changed. status.autoscaling is left out: it belongs to
 * the autoscaler (its own field manager). ScalingActive is reported here, for autoscaled objects
 * only, until the autoscaler exists to own it.
 */
export function computeStatus(
  md: ModelDeployment,
  observed: Observed,
  now: Date,
): { status: ModelDeploymentStatus; events: StatusEvent[] } {
  const f = gatherFacts(md, observed);
  const previous = new Map((md.status?.conditions ?? []).map((c) => [c.type, c]));
  const generation = md.metadata.generation ?? 0;
  const events: StatusEvent[] = [];
  const types = md.spec.autoscaling ? [...order, ConditionTypes.ScalingActive] : order;
  const conditions: Condition[] = types.map((type) => {
    const v = evaluate(type, f);
    const before = previous.get(type);
    const changed = before?.status !== v.status;
    if (changed || before?.reason !== v.reason) {
      const e = eventFor(ConditionTypes[type], v);
      if (e) events.push(e);
    }
    return {
      type,
      status: v.status,
      observedGeneration: generation,
      lastTransitionTime:
        changed || !before?.lastTransitionTime
          ? now.toISOString().replace(/\.\d{3}Z$/, "Z")
          : before.lastTransitionTime,
      reason: v.reason,
      message: v.message,
    };
  });
  const d = observed.deployment;
  const status: ModelDeploymentStatus = {
    observedGeneration: generation,
    conditions,
    replicas: d?.status?.replicas ?? 0,
    readyReplicas: d?.status?.readyReplicas ?? 0,
    replicasSummary: `${d?.status?.readyReplicas ?? 0}/${f.desired}`,
    selector: selectorString(md),
    endpoint: endpointOf(md),
  };
  return { status, events };
}

/** The part of a stored status that the reconciler owns (what computeStatus returns). */
export function ownedStatus(s: ModelDeploymentStatus | undefined): ModelDeploymentStatus {
  if (!s) return {};
  const { autoscaling: _autoscaling, ...rest } = s;
  return rest;
}

/** True when the stored status differs from the computed one in a field the reconciler owns. */
export function statusChanged(stored: ModelDeploymentStatus | undefined, computed: ModelDeploymentStatus): boolean {
  return canonical(ownedStatus(stored)) !== canonical(computed);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === "object" && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => (p < q ? -1 : 1)))
      : x,
  );
}
