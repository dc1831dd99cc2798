/**
 * The ModelDeployment API (maas.dev/v1alpha1): types, names, condition vocabulary, the CRD, and a
 * runtime validator. Everything is derived from the schema in model-deployment.ts.
 */
export {
  API_VERSION,
  CATEGORIES,
  CRD_NAME,
  GROUP,
  KIND,
  LIST_KIND,
  MAX_NAME_LENGTH,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "./names.ts";
export {
  AutoscalingLimits,
  AutoscalingModes,
  MetricTypes,
  NativeBackends,
  NativeOnlyFormats,
  specSchema,
  statusSchema,
  type AutoscalingLimit,
  type AutoscalingMode,
  type Autoscaling,
  type AutoscalingMetric,
  type AutoscalingStatus,
  type Condition,
  type GpuResources,
  type MetricType,
  type ModelDeploymentSpec,
  type ModelDeploymentStatus,
  type ModelSource,
  type Resources,
  type Scheduling,
  type Serving,
  type Toleration,
} from "./model-deployment.ts";
export {
  ConditionStatuses,
  ConditionTypes,
  HoldingReasons,
  Reasons,
  type ConditionReason,
  type ConditionStatus,
  type ConditionType,
  type HoldingReason,
} from "./conditions.ts";
export {
  GENERATED_HEADER,
  crdObject,
  crdYaml,
  modelDeploymentSchema,
  openAPISchema,
  validateModelDeployment,
  withDefaults,
  type ModelDeployment,
  type ObjectMeta,
  type ValidationResult,
} from "./crd.ts";
export type { FieldError } from "./validate.ts";
export { Backends, ModelFormats, type Backend, type ModelFormat } from "../../../serving-image/src/contract.ts";
