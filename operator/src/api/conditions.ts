/**
 * Condition types and reasons of a ModelDeployment's status. The operator sets only these, so users,
 * `kubectl wait --for=condition=Ready`, Argo CD and Flux can rely on them.
 */

export const ConditionTypes = {
  /** Summary: True when the model answers requests at the desired scale for the current generation. */
  Ready: "Ready",
  /** The model was fetched, verified and loaded by at least one replica. */
  ModelAvailable: "ModelAvailable",
  /** Every serving pod found a node (False names what is missing, e.g. free nvidia.com/gpu). */
  Scheduled: "Scheduled",
  /** A rollout of the current generation is under way. */
  Progressing: "Progressing",
  /** Something needs a human: crash loops, image pull failures, a child owned by someone else. */
  Degraded: "Degraded",
  /**
   * kstatus' abnormal-true condition, so Flux and other kstatus users read a broken object as Failed
   * instead of InProgress: True, with the cause's reason and message, while Degraded is True, the
   * model cannot be fetched, verified or loaded (ModelAvailable=False), or the rollout passed its
   * progress deadline.
   */
  Stalled: "Stalled",
  /** The autoscaler is reading its metric and acting on it (False while holding replicas). */
  ScalingActive: "ScalingActive",
  /**
   * The autoscaler's replicas are held back: capped at maxReplicas, slowed by a rate limit, or
   * waiting for nodes with room (free GPUs). False while the decision is what the metric asks for.
   */
  ScalingLimited: "ScalingLimited",
} as const;
export type ConditionType = (typeof ConditionTypes)[keyof typeof ConditionTypes];

export const ConditionStatuses = { True: "True", False: "False", Unknown: "Unknown" } as const;
export type ConditionStatus = (typeof ConditionStatuses)[keyof typeof ConditionStatuses];

/**
 * Why the autoscaler holds replicas instead of acting: reported in status.autoscaling.holdingReason
 * and as the reason of ScalingActive=False.
 */
export const HoldingReasons = {
  /** No answer from Prometheus (connection refused, timeout, 5xx). */
  PrometheusUnreachable: "PrometheusUnreachable",
  /** Prometheus refused the query, or it returned more than one series. */
  QueryFailed: "QueryFailed",
  /** The query returned no sample (no serving pod scraped in the window yet). */
  MetricMissing: "MetricMissing",
  /** The sample is not a finite, non-negative number. */
  MetricInvalid: "MetricInvalid",
} as const;
export type HoldingReason = (typeof HoldingReasons)[keyof typeof HoldingReasons];

/** Why ModelAvailable is False: the model cannot be fetched, verified or loaded. */
const ModelFailures = {
  ModelFetchFailed: "ModelFetchFailed",
  ModelLoadFailed: "ModelLoadFailed",
  ChecksumMismatch: "ChecksumMismatch",
  CredentialsSecretMissing: "CredentialsSecretMissing",
  ModelClaimMissing: "ModelClaimMissing",
} as const;

/** Why Degraded is True. */
const DegradedCauses = {
  CrashLooping: "CrashLooping",
  ImagePullFailed: "ImagePullFailed",
  ChildConflict: "ChildConflict",
  InvalidSpec: "InvalidSpec",
  ApplyForbidden: "ApplyForbidden",
  /** The API server failed to apply a child (a 5xx, a timeout, a conflict): retried with back-off. */
  ApplyFailed: "ApplyFailed",
} as const;

/** Why Progressing is False short of completion: the Deployment's own verdict. */
const RolloutFailures = { ProgressDeadlineExceeded: "ProgressDeadlineExceeded" } as const;

/** Reasons, grouped by the condition that uses them. CamelCase, as metav1.Condition requires. */
export const Reasons = {
  Ready: {
    AllReplicasReady: "AllReplicasReady",
    ReplicasNotReady: "ReplicasNotReady",
    ScaledToZero: "ScaledToZero",
    /** Pods of a previous revision still run: the current spec is not rolled out yet. */
    RolloutInProgress: "RolloutInProgress",
    ReconcileFailed: "ReconcileFailed",
  },
  ModelAvailable: {
    ModelLoaded: "ModelLoaded",
    /** The current revision does not serve yet; the previous one still does. */
    PreviousRevisionServing: "PreviousRevisionServing",
    ModelLoading: "ModelLoading",
    ...ModelFailures,
  },
  Scheduled: {
    PodsScheduled: "PodsScheduled",
    InsufficientGPU: "InsufficientGPU",
    Unschedulable: "Unschedulable",
  },
  Progressing: {
    RolloutInProgress: "RolloutInProgress",
    RolloutComplete: "RolloutComplete",
    ...RolloutFailures,
  },
  Degraded: {
    AsExpected: "AsExpected",
    ...DegradedCauses,
  },
  Stalled: {
    AsExpected: "AsExpected",
    // True: the reason of the condition that stalls the object.
    ...DegradedCauses,
    ...ModelFailures,
    ...RolloutFailures,
  },
  ScalingActive: {
    MetricAvailable: "MetricAvailable",
    /** The autoscaler has not read the metric for this object yet. */
    AwaitingMetrics: "AwaitingMetrics",
    /** The operator runs without --prometheus-url: replicas are held. */
    PrometheusNotConfigured: "PrometheusNotConfigured",
    ...HoldingReasons,
  },
  ScalingLimited: {
    DesiredWithinRange: "DesiredWithinRange",
    /** Some of the replicas the autoscaler asked for cannot be scheduled (e.g. no free nvidia.com/gpu). */
    WaitingForCapacity: "WaitingForCapacity",
    TooManyReplicas: "TooManyReplicas",
    ScaleUpLimited: "ScaleUpLimited",
    ScaleDownLimited: "ScaleDownLimited",
  },
} as const satisfies Record<ConditionType, Record<string, string>>;

/** Every reason of one condition type, e.g. `ConditionReason<"Scheduled">`. */
export type ConditionReason<T extends ConditionType = ConditionType> = {
  [K in T]: (typeof Reasons)[K][keyof (typeof Reasons)[K]];
}[T];
