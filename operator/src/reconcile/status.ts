/**
 * A ModelDeployment's status, computed from what the operator observed: its Deployment, the
 * serving pods, any child it could not apply, and the autoscaler's decision. Each condition is an
 * ordered chain of named predicates (cert-manager style): the first that matches decides status,
 * reason and message, so the chain reads like the specification of the condition. Pure; the clock
 * is an argument.
 *
 * Ready follows Kubernetes' own rollout semantics (`kubectl rollout status`, kstatus): the
 * Deployment has observed the spec we applied, its replicas run the current pod template, no pod of
 * a previous revision remains, and enough of them are available. A rollout that is stuck or failing
 * never reads Ready, however many pods of the previous revision still serve.
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
import { desiredReplicas, templateHashOf } from "./desired-deployment.ts";
import { endpointOf } from "./desired-service.ts";
import { canonicalJson } from "./hash.ts";
import { Annotations, selectorString } from "./labels.ts";

/** A child that carries our name but is not controlled by this ModelDeployment. */
export interface ChildConflict {
  kind: string;
  name: string;
}

/**
 * How the API server refused a child: `invalid` (400/422: the spec produced an object it refuses;
 * retried when the spec changes), `forbidden` (403: a quota, admission policy or RBAC, which can
 * change without the spec changing; rechecked periodically), `failed` (5xx, a timeout, a conflict:
 * retried with back-off).
 */
export type ApplyErrorKind = "invalid" | "forbidden" | "failed";

export interface ApplyError {
  /** "The API server refused the Deployment: …", quoting the server. */
  message: string;
  kind: ApplyErrorKind;
}

export interface Observed {
  /** Our Deployment, if it exists. */
  deployment: V1Deployment | undefined;
  /** Pods matching the ModelDeployment's selector (all revisions). */
  pods: readonly V1Pod[];
  conflicts: readonly ChildConflict[];
  /** The API server refused to apply a child. */
  applyError?: ApplyError | undefined;
  /** The pod template hash of the Deployment the spec asks for now (pods of other hashes are a previous revision). */
  templateHash: string;
  /** Whether this operator runs the autoscaler (it needs --prometheus-url). */
  autoscalerEnabled: boolean;
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

interface PodProblem {
  pod: string;
  message: string;
}

/** Facts derived once from the observation, shared by every rule. */
interface Facts {
  md: ModelDeployment;
  observed: Observed;
  /** Replicas the spec (or the autoscaler) asks for: what the Deployment is sized to. */
  desired: number;
  /** Available replicas that make the object Ready: all desired ones, or minReplicas when autoscaled. */
  readyFloor: number;
  ready: number;
  available: number;
  updated: number;
  /** Pods of every revision the Deployment counts (terminating pods excluded). */
  total: number;
  /** The Deployment has observed the spec we applied (generation, template, replicas). */
  rolloutObserved: boolean;
  /** Pods of a previous revision still exist. */
  oldRemain: boolean;
  /** Pods of a previous revision that serve. */
  oldServing: number;
  unscheduled: PodProblem[];
  /** The scheduler lacks free GPUs, as opposed to refusing for another reason. */
  gpuShortage: boolean;
  fetchFailure: PodProblem | undefined;
  crashLoop: { pod: string; container: string; restarts: number; message: string } | undefined;
  /** The serving container's own account of why the model did not load (its termination message). */
  loadFailure: PodProblem | undefined;
  imagePull: PodProblem | undefined;
  /** The kubelet could not build a container: a missing Secret or key, say. */
  configError: PodProblem | undefined;
  /** Pods of the current revision that serve. */
  currentServing: number;
  deadlineExceeded: string | undefined;
}

function terminatedOf(s: V1ContainerStatus) {
  return s.state?.terminated ?? s.lastState?.terminated;
}

function oneLine(s: string | undefined, max = 512): string {
  const t = (s ?? "").trim().split("\n").filter(Boolean).pop() ?? "";
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}

const servesModel = (p: V1Pod) =>
  p.status?.containerStatuses?.some((s) => s.name === ContainerNames.serve && s.ready) ?? false;

/** Failures of one revision's pods: the first of each kind. */
function podProblems(pods: readonly V1Pod[]) {
  let fetchFailure: Facts["fetchFailure"];
  let crashLoop: Facts["crashLoop"];
  let loadFailure: Facts["loadFailure"];
  let imagePull: Facts["imagePull"];
  let configError: Facts["configError"];
  for (const p of pods) {
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
      if (w && /CreateContainerConfigError|CreateContainerError/.test(w.reason ?? "") && !configError) {
        configError = { pod, message: `container ${s.name}: ${oneLine(w.message) || (w.reason ?? "")}` };
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
  return { fetchFailure, crashLoop, loadFailure, imagePull, configError };
}

function gatherFacts(md: ModelDeployment, observed: Observed): Facts {
  const d = observed.deployment;
  const desired = desiredReplicas(md);
  const a = md.spec.autoscaling;
  const live = observed.pods.filter((p) => !p.metadata?.deletionTimestamp);
  const isCurrent = (p: V1Pod) => p.metadata?.annotations?.[Annotations.templateHash] === observed.templateHash;
  const current = live.filter(isCurrent);
  const old = live.filter((p) => !isCurrent(p));
  const unscheduled = live
    .map((p) => ({ p, c: p.status?.conditions?.find((c) => c.type === "PodScheduled") }))
    .filter(({ c }) => c?.status === "False")
    .map(({ p, c }) => ({ pod: p.metadata!.name!, message: oneLine(c!.message, 1024) }));
  const generation = d?.metadata?.generation ?? 0;
  const progressing = d?.status?.conditions?.find((c) => c.type === "Progressing");
  const updated = d?.status?.updatedReplicas ?? 0;
  const total = d?.status?.replicas ?? 0;
  return {
    md,
    observed,
    desired,
    // Autoscaled: serving at minReplicas is Ready; replicas the autoscaler adds for load (or that wait
    // for GPUs) are reported by ScalingLimited, not by flipping Ready with the traffic.
    readyFloor: a ? Math.min(desired, Math.max(1, a.minReplicas ?? 1)) : desired,
    ready: d?.status?.readyReplicas ?? 0,
    available: d?.status?.availableReplicas ?? 0,
    updated,
    total,
    // An autoscaled object's replicas change with the traffic: a scale is not a rollout, and must
    // not flip Ready (GitOps tools would show every burst as Progressing).
    rolloutObserved:
      d !== undefined &&
      (d.status?.observedGeneration ?? 0) >= generation &&
      templateHashOf(d) === observed.templateHash &&
      (a !== undefined || (d.spec?.replicas ?? 1) === desired),
    oldRemain: total > updated || old.length > 0,
    oldServing: old.filter(servesModel).length,
    unscheduled,
    gpuShortage: unscheduled.some((u) => /Insufficient nvidia\.com\/gpu/.test(u.message)),
    ...podProblems(current),
    currentServing: current.filter(servesModel).length,
    deadlineExceeded: progressing?.reason === "ProgressDeadlineExceeded" ? (progressing.message ?? "") : undefined,
  };
}

const conflictMessage = (c: readonly ChildConflict[], ns: string) =>
  c.map((x) => `${x.kind} ${ns}/${x.name} exists and is not controlled by this ModelDeployment`).join("; ") +
  "; delete it or rename the ModelDeployment";

const schedulingMessage = (f: Facts) =>
  `${f.unscheduled.length}/${f.observed.pods.length} pods cannot be scheduled: ${f.unscheduled[0]!.message}`;

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

/** "; the previous revision still serves on 2 replicas" while old pods serve, else "". */
const previousServes = (f: Facts) =>
  f.oldServing > 0 ? `; the previous revision still serves on ${plural(f.oldServing, "replica")}` : "";

/** The rollout is complete in Kubernetes' sense, at the size that makes the object Ready. */
function rolloutDone(f: Facts, size: number): boolean {
  return f.rolloutObserved && !f.oldRemain && f.updated >= size && f.available >= size;
}

/** What holds replicas back, in the words of whoever knows (fetch, serving container, scheduler, kubelet). */
function blockingCause(f: Facts): string | undefined {
  if (f.fetchFailure)
    return TerminationPrefixes.fetchFailed + f.fetchFailure.message.replace(/^model fetch failed:\s*/i, "");
  if (f.loadFailure) return f.loadFailure.message;
  if (f.configError) return f.configError.message;
  if (f.unscheduled.length) return schedulingMessage(f);
  if (f.crashLoop) return `container ${f.crashLoop.container} is crash looping`;
  if (f.imagePull) return f.imagePull.message;
  if (f.deadlineExceeded !== undefined) return f.deadlineExceeded;
  return undefined;
}

const autoscalingOf = (f: Facts) => f.md.status?.autoscaling;

/** Stalled=True with the reason and message of the condition that stalls the object. */
const stalled = (cause: Verdict): Verdict => ({ status: "True", reason: cause.reason, message: cause.message });
const whenStatus = (cause: Verdict, status: Verdict["status"]) =>
  cause.status === status ? stalled(cause) : undefined;

/** The condition chains; order within a chain is priority. */
const chains: Record<ConditionType, Rule[]> = {
  ScalingActive: [
    {
      name: "the operator runs without Prometheus",
      when: (f) =>
        f.observed.autoscalerEnabled
          ? undefined
          : {
              status: "False",
              reason: Reasons.ScalingActive.PrometheusNotConfigured,
              message: `maas-operator runs without --prometheus-url, so nothing reads the metric: holding ${plural(f.desired, "replica")}`,
            },
    },
    {
      name: "the autoscaler has not decided yet",
      when: (f) =>
        autoscalingOf(f)?.mode === undefined
          ? {
              status: "Unknown",
              reason: Reasons.ScalingActive.AwaitingMetrics,
              message: `The autoscaler has not read the metric yet: ${plural(f.desired, "replica")} (minReplicas)`,
            }
          : undefined,
    },
    {
      name: "the metric cannot be read",
      when: (f) => {
        const s = autoscalingOf(f)!;
        return s.mode === "Holding"
          ? { status: "False", reason: s.holdingReason ?? Reasons.ScalingActive.MetricMissing, message: s.reason ?? "" }
          : undefined;
      },
    },
    {
      name: "otherwise the autoscaler acts on the metric",
      when: (f) => ({
        status: "True",
        reason: Reasons.ScalingActive.MetricAvailable,
        message: autoscalingOf(f)!.reason ?? "",
      }),
    },
  ],
  ScalingLimited: [
    {
      name: "replicas the autoscaler added cannot be scheduled",
      when: (f) =>
        f.unscheduled.length && f.ready < f.desired
          ? {
              status: "True",
              reason: Reasons.ScalingLimited.WaitingForCapacity,
              message: `${f.desired - f.ready} of ${plural(f.desired, "desired replica")} not ready: ${schedulingMessage(f)}`,
            }
          : undefined,
    },
    ...(
      [
        ["MaxReplicas", Reasons.ScalingLimited.TooManyReplicas],
        ["ScaleUpRate", Reasons.ScalingLimited.ScaleUpLimited],
        ["ScaleDownRate", Reasons.ScalingLimited.ScaleDownLimited],
      ] as const
    ).map(([limit, reason]): Rule => ({
      name: `the decision is held by ${limit}`,
      when: (f) => {
        const s = autoscalingOf(f);
        return s?.mode !== "Holding" && s?.limitedBy === limit
          ? { status: "True", reason, message: s.reason ?? "" }
          : undefined;
      },
    })),
    {
      name: "otherwise the decision is what the metric asks for",
      when: (f) => {
        const a = f.md.spec.autoscaling!;
        return {
          status: "False",
          reason: Reasons.ScalingLimited.DesiredWithinRange,
          message: `${plural(f.desired, "replica")} desired, within minReplicas ${a.minReplicas ?? 1} and maxReplicas ${a.maxReplicas}`,
        };
      },
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
      when: (f) => {
        const e = f.observed.applyError;
        if (!e) return undefined;
        const reason = {
          invalid: Reasons.Degraded.InvalidSpec,
          forbidden: Reasons.Degraded.ApplyForbidden,
          failed: Reasons.Degraded.ApplyFailed,
        }[e.kind];
        return { status: "True", reason, message: e.message };
      },
    },
    {
      name: "the serving container crash loops",
      when: (f) =>
        f.crashLoop
          ? {
              status: "True",
              reason: Reasons.Degraded.CrashLooping,
              message: `Container ${f.crashLoop.container} of pod ${f.crashLoop.pod} is crash looping (${plural(f.crashLoop.restarts, "restart")})${f.crashLoop.message ? ": " + f.crashLoop.message : ""}`,
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
  // kstatus (Flux, kpt, cli-utils) reads Stalled=True as Failed; without it a broken object can only
  // be InProgress, and a health check waits for its timeout. Stalled repeats the cause in the
  // cause's words, so Ready, Degraded and ModelAvailable keep their meaning for everyone else.
  Stalled: [
    {
      name: "something needs a human (Degraded)",
      when: (f) => whenStatus(evaluate(ConditionTypes.Degraded, f), "True"),
    },
    {
      name: "the model cannot be fetched, verified or loaded",
      when: (f) => whenStatus(evaluate(ConditionTypes.ModelAvailable, f), "False"),
    },
    {
      name: "the rollout passed its progress deadline",
      when: (f) => {
        const p = evaluate(ConditionTypes.Progressing, f);
        return p.reason === Reasons.Progressing.ProgressDeadlineExceeded ? stalled(p) : undefined;
      },
    },
    { name: "otherwise", when: () => ({ status: "False", reason: Reasons.Stalled.AsExpected, message: "" }) },
  ],
  Scheduled: [
    {
      name: "pods wait for free GPUs",
      when: (f) =>
        f.gpuShortage
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
      name: "a replica of the current revision serves the model",
      when: (f) =>
        f.currentServing > 0
          ? { status: "True", reason: Reasons.ModelAvailable.ModelLoaded, message: "Model loaded and serving" }
          : undefined,
    },
    {
      name: "the model's checksum did not match",
      when: (f) =>
        f.fetchFailure && /sha256 mismatch/i.test(f.fetchFailure.message)
          ? {
              status: "False",
              reason: Reasons.ModelAvailable.ChecksumMismatch,
              message: f.fetchFailure.message + previousServes(f),
            }
          : undefined,
    },
    {
      name: "the model fetch failed",
      when: (f) =>
        f.fetchFailure
          ? {
              status: "False",
              reason: Reasons.ModelAvailable.ModelFetchFailed,
              message: f.fetchFailure.message + previousServes(f),
            }
          : undefined,
    },
    {
      name: "the credentials Secret is missing",
      when: (f) =>
        f.configError && /secret|key/i.test(f.configError.message)
          ? {
              status: "False",
              reason: Reasons.ModelAvailable.CredentialsSecretMissing,
              message: `The model's credentials cannot be read: ${f.configError.message}${previousServes(f)}`,
            }
          : undefined,
    },
    {
      name: "the model's PersistentVolumeClaim does not exist",
      when: (f) => {
        const u = f.unscheduled.find((x) => /persistentvolumeclaim "[^"]*" not found/i.test(x.message));
        return u
          ? {
              status: "False",
              reason: Reasons.ModelAvailable.ModelClaimMissing,
              message: `The model's volume cannot be mounted: ${u.message}${previousServes(f)}`,
            }
          : undefined;
      },
    },
    {
      name: "the serving container could not load the model",
      when: (f) =>
        f.loadFailure
          ? {
              status: "False",
              reason: Reasons.ModelAvailable.ModelLoadFailed,
              message: f.loadFailure.message + previousServes(f),
            }
          : undefined,
    },
    {
      name: "the previous revision serves while the new one starts",
      when: (f) =>
        f.oldServing > 0
          ? {
              status: "True",
              reason: Reasons.ModelAvailable.PreviousRevisionServing,
              message: `The previous revision serves on ${plural(f.oldServing, "replica")}; the current revision is not serving yet`,
            }
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
        f.deadlineExceeded !== undefined && !rolloutDone(f, f.readyFloor)
          ? { status: "False", reason: Reasons.Progressing.ProgressDeadlineExceeded, message: f.deadlineExceeded }
          : undefined,
    },
    {
      // Autoscaled: replicas the autoscaler adds (or that wait for GPUs) are ScalingLimited's news,
      // not a rollout; a rollout is done once the current revision serves at minReplicas.
      name: "a rollout is under way",
      when: (f) =>
        rolloutDone(f, f.readyFloor) && (f.md.spec.autoscaling !== undefined || f.total <= f.desired)
          ? undefined
          : {
              status: "True",
              reason: Reasons.Progressing.RolloutInProgress,
              message: `${f.updated}/${f.desired} replicas updated, ${f.available} available${f.oldRemain ? ", previous revision still running" : ""}`,
            },
    },
    {
      name: "otherwise",
      when: (f) => ({
        status: "False",
        reason: Reasons.Progressing.RolloutComplete,
        message: `${plural(f.desired, "replica")} up to date`,
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
        f.desired === 0 && f.rolloutObserved && f.total === 0
          ? { status: "True", reason: Reasons.Ready.ScaledToZero, message: "Scaled to zero replicas" }
          : undefined,
    },
    {
      name: "the current revision is rolled out and available",
      when: (f) =>
        f.desired > 0 && rolloutDone(f, f.readyFloor)
          ? {
              status: "True",
              reason: Reasons.Ready.AllReplicasReady,
              message:
                `${Math.min(f.ready, f.desired)}/${f.desired} replicas ready` +
                (f.ready < f.desired ? ` (autoscaled: ${f.desired - f.ready} more on the way)` : ""),
            }
          : undefined,
    },
    {
      name: "a previous revision still runs: the rollout is not done",
      when: (f) => {
        if (!f.observed.deployment || !f.oldRemain) return undefined;
        const cause = blockingCause(f);
        return {
          status: "False",
          reason: Reasons.Ready.RolloutInProgress,
          message:
            `Rolling out the current spec: ${f.currentServing}/${f.desired} replicas of it ready, ` +
            `${f.oldServing} of the previous revision still serving${cause ? ": " + cause : ""}`,
        };
      },
    },
    {
      name: "otherwise, say what holds the replicas back",
      when: (f) => {
        const cause = blockingCause(f);
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
  if ((type === "Scheduled" || type === "ModelAvailable" || type === "ScalingActive") && v.status === "False") {
    return { type: "Warning", reason: v.reason, message: v.message };
  }
  if (type === "Progressing" && v.reason === Reasons.Progressing.ProgressDeadlineExceeded) {
    return { type: "Warning", reason: v.reason, message: v.message };
  }
  return undefined;
}

const order: ConditionType[] = ["Ready", "ModelAvailable", "Scheduled", "Progressing", "Degraded", "Stalled"];
const autoscaledOrder: ConditionType[] = [...order, ConditionTypes.ScalingActive, ConditionTypes.ScalingLimited];

/**
 * The status fields the reconciler owns, and the Events to record. Conditions keep their
 * lastTransitionTime unless their status changed. status.autoscaling is left out: the autoscaler
 * writes it under its own field manager; the reconciler turns it into the ScalingActive and
 * ScalingLimited conditions (for autoscaled objects only).
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
  const conditions: Condition[] = (md.spec.autoscaling ? autoscaledOrder : order).map((type) => {
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
    // During a scale-down the Deployment may count a pod more than it is sized for, for a moment.
    replicasSummary: `${Math.min(d?.status?.readyReplicas ?? 0, f.desired)}/${f.desired}`,
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
  return canonicalJson(ownedStatus(stored)) !== canonicalJson(computed);
}
