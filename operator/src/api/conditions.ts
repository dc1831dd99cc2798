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
  /** The autoscaler is reading its metric and acting on it (False while holding replicas). */
  ScalingActive: "ScalingActive",
} as const;
export type ConditionType = (typeof ConditionTypes)[keyof typeof ConditionTypes];

export const ConditionStatuses = { True: "True", False: "False", Unknown: "Unknown" } as const;
export type ConditionStatus = (typeof ConditionStatuses)[keyof typeof ConditionStatuses];

/** Reasons, grouped by the condition that uses them. CamelCase, as metav1.Condition requires. */
export const Reasons = {
  Ready: {
    AllReplicasReady: "AllReplicasReady",
    ReplicasNotReady: "ReplicasNotReady",
    ScaledToZero: "ScaledToZero",
    Reconciling: "Reconciling",
    ReconcileFailed: "ReconcileFailed",
  },
  ModelAvailable: {
    ModelLoaded: "ModelLoaded",
    ModelLoading: "ModelLoading",
    ModelFetchFailed: "ModelFetchFailed",
    ModelLoadFailed: "ModelLoadFailed",
    ChecksumMismatch: "ChecksumMismatch",
    CredentialsSecretMissing: "CredentialsSecretMissing",
    ModelClaimMissing: "ModelClaimMissing",
  },
  Scheduled: {
    PodsScheduled: "PodsScheduled",
    InsufficientGPU: "InsufficientGPU",
    Unschedulable: "Unschedulable",
  },
  Progressing: {
    RolloutInProgress: "RolloutInProgress",
    RolloutComplete: "RolloutComplete",
    ProgressDeadlineExceeded: "ProgressDeadlineExceeded",
  },
  Degraded: {
    AsExpected: "AsExpected",
    CrashLooping: "CrashLooping",
    ImagePullFailed: "ImagePullFailed",
    ChildConflict: "ChildConflict",
    InvalidSpec: "InvalidSpec",
    ApplyForbidden: "ApplyForbidden",
  },
  ScalingActive: {
    MetricAvailable: "MetricAvailable",
    PrometheusUnreachable: "PrometheusUnreachable",
    MetricMissing: "MetricMissing",
    QueryFailed: "QueryFailed",
    AutoscalingDisabled: "AutoscalingDisabled",
    /** This operator version has no autoscaler: replicas are held at minReplicas. */
    AutoscalerNotRunning: "AutoscalerNotRunning",
  },
} as const satisfies Record<ConditionType, Record<string, string>>;

/** Every reason of one condition type, e.g. `ConditionReason<"Scheduled">`. */
export type ConditionReason<T extends ConditionType = ConditionType> = {
  [K in T]: (typeof Reasons)[K][keyof (typeof Reasons)[K]];
}[T];
