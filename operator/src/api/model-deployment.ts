/**
 * The ModelDeployment v1alpha1 schema: the single source of truth for the TypeScript types, the
 * runtime validator and the CRD. Every field has a description (it is what `kubectl explain` shows),
 * and every rule that spans fields is a CEL rule with a message that says what to change.
 */
import { Backends, CredentialKeys, Defaults, ModelFormats } from "../../../serving-image/src/contract.ts";
import {
  DIRECTORY_FORMATS,
  DIRECTORY_URI,
  JSON_FILE_URI,
  MODEL_JSON_SOURCE_MESSAGE,
  MODEL_URI_MAX_LENGTH,
  MODEL_URI_RULES,
  MODEL_VERSION_MAX_LENGTH,
  MODEL_VERSION_MESSAGE,
  MODEL_VERSION_PATTERN,
  REMOTE_URI,
  SAVED_MODEL_SOURCE_MESSAGE,
  SERVED_NAME_MAX_LENGTH,
  SERVED_NAME_MESSAGE,
  SERVED_NAME_PATTERN,
  isModelVersion,
  isServedName,
  matches,
  modelSourceProblem,
} from "../../../serving-image/src/grammar.ts";
import { affinity } from "./affinity.ts";
import { HoldingReasons } from "./conditions.ts";
import { NON_EMPTY_LABEL_VALUE_PATTERN, labelKey, labelMap, labelValue } from "./label-syntax.ts";
import {
  DNS1123_SUBDOMAIN_PATTERN,
  GPU_PRODUCT_LABEL,
  IMAGE_NAME_LENGTH_PATTERN,
  IMAGE_REFERENCE_PATTERN,
} from "./names.ts";
import {
  array,
  celString,
  integer,
  number,
  object,
  patternRule,
  quantity,
  rule,
  string,
  stringEnum,
  wholeQuantityRule,
  type Static,
} from "./schema.ts";

/** Metric types the autoscaler understands; for all but PromQL the operator writes the query. */
export const MetricTypes = ["RequestsPerSecond", "Concurrency", "LatencyP95", "PromQL"] as const;
export type MetricType = (typeof MetricTypes)[number];

/** Formats that need a native TensorFlow backend (the wasm and cpu backends only run TF.js formats). */
export const NativeOnlyFormats = ["tf-saved-model"] as const satisfies readonly (typeof ModelFormats)[number][];
export const NativeBackends = [
  "auto",
  "tensorflow",
  "tensorflow-gpu",
] as const satisfies readonly (typeof Backends)[number][];

/** A CEL list literal of strings. */
const celList = (items: readonly string[]): string => `[${items.map(celString).join(", ")}]`;

/** A character PromQL does not skip as whitespace (its lexer skips space, tab, newline and carriage return). */
const PROMQL_NON_SPACE = "[^ \\t\\n\\r]";

const uri = string(
  "Where the model is. https://host/path/model.json or http:// (a tfjs model.json; its weight files are fetched " +
    "from beside it); s3://bucket/path/model.json (for GCS use its S3 API via the credentials Secret's " +
    "AWS_ENDPOINT_URL_S3); pvc://claim/path (a model.json, file or directory on a PersistentVolumeClaim in the " +
    "same namespace, mounted read-only); file:///path (development only: a path on the node that runs the pod).",
  {
    minLength: 1,
    maxLength: MODEL_URI_MAX_LENGTH,
    // One rule per rule of the grammar fetch parses the URI with (serving-image/src/grammar.ts).
    rules: MODEL_URI_RULES.map((r) => patternRule(r)),
  },
);

const model = object(
  "The model to serve: where it is, its format, and how clients name it.",
  {
    uri,
    format: stringEnum(
      "Model format. tfjs-graph (tf.loadGraphModel) and tfjs-layers (tf.loadLayersModel) run on every backend; " +
        "tf-saved-model is a directory (pvc:// or file://) and needs a native backend (tensorflow or tensorflow-gpu).",
      ModelFormats,
      { default: "tfjs-graph" },
    ),
    sha256: string(
      "Optional sha256 (64 lowercase hex characters) of the whole fetched model: the sha256 of the sha256sum " +
        "lines of its files, sorted by path (cd model-dir && find -L . -type f | sed 's|^./||' | LC_ALL=C sort | " +
        "xargs -d '\\n' sha256sum | sha256sum). The pod's fetch step refuses a model that does not match.",
      { pattern: "^[0-9a-f]{64}$", maxLength: 64 },
    ),
    servedName: string("Name clients use in /v1/models/{name} and /v2/models/{name}. Defaults to metadata.name.", {
      maxLength: SERVED_NAME_MAX_LENGTH,
      rules: [
        rule<string>({
          rule: `self.matches(${celString(SERVED_NAME_PATTERN)})`,
          message: SERVED_NAME_MESSAGE,
          check: isServedName,
        }),
      ],
    }),
    version: string(
      'Version number (digits, e.g. "3") reported by /v1 model status and /v2 model metadata, which clients ' +
        "may name in /v1/models/{name}/versions/{version}. Default 1.",
      {
        maxLength: MODEL_VERSION_MAX_LENGTH,
        rules: [
          rule<string>({
            rule: `self.matches(${celString(MODEL_VERSION_PATTERN)})`,
            message: MODEL_VERSION_MESSAGE,
            check: isModelVersion,
          }),
        ],
      },
    ),
    credentialsSecretRef: object(
      "Secret in the same namespace with credentials for the model store. Keys read: " +
        `${Object.values(CredentialKeys).join(", ")} (HTTP_AUTHORIZATION is the Authorization header for http(s)). ` +
        "Required: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for s3://, HTTP_AUTHORIZATION for http(s)://; a " +
        "missing Secret or key shows in the ModelAvailable condition. The values are passed to the fetch step " +
        "only; they are never copied into status, logs or Events.",
      {
        name: string("Name of the Secret.", { pattern: DNS1123_SUBDOMAIN_PATTERN, minLength: 1, maxLength: 253 }),
      },
      { required: ["name"] },
    ),
  },
  {
    required: ["uri"],
    rules: [
      // The same two checks fetch makes with MAAS_MODEL_FORMAT (grammar.ts's modelSourceProblem).
      rule<{ uri: string; format: string }>({
        rule: `!(self.format in ${celList(DIRECTORY_FORMATS)}) || self.uri.matches(${celString(DIRECTORY_URI)})`,
        message: SAVED_MODEL_SOURCE_MESSAGE,
        fieldPath: ".uri",
        check: (m) => modelSourceProblem(m.uri, m.format) !== SAVED_MODEL_SOURCE_MESSAGE,
      }),
      rule<{ uri: string; format: string }>({
        rule:
          `self.format in ${celList(DIRECTORY_FORMATS)} || !self.uri.matches(${celString(REMOTE_URI)}) || ` +
          `self.uri.matches(${celString(JSON_FILE_URI)})`,
        message: MODEL_JSON_SOURCE_MESSAGE,
        fieldPath: ".uri",
        check: (m) => modelSourceProblem(m.uri, m.format) !== MODEL_JSON_SOURCE_MESSAGE,
      }),
      rule<{ uri: string; credentialsSecretRef?: unknown }>({
        rule: `!has(self.credentialsSecretRef) || !self.uri.matches(${celString(DIRECTORY_URI)})`,
        message: "credentialsSecretRef is for s3 and http(s) model stores; pvc:// and file:// uris need none",
        fieldPath: ".credentialsSecretRef",
        reason: "FieldValueForbidden",
        check: (m) => m.credentialsSecretRef === undefined || !matches(m.uri, DIRECTORY_URI),
      }),
    ],
  },
);

const gpu = object(
  "GPUs per replica. The pods request nvidia.com/gpu and tolerate the nvidia.com/gpu:NoSchedule taint.",
  {
    count: integer("Whole GPUs per replica (limits nvidia.com/gpu). GPUs are not shared between pods.", {
      minimum: 0,
      maximum: 16,
    }),
    product: string(
      "GPU model, as in the node label nvidia.com/gpu.product (e.g. NVIDIA-H100-80GB-HBM3). " +
        "The pods then run only on nodes with that label value. Needs count >= 1.",
      { pattern: NON_EMPTY_LABEL_VALUE_PATTERN, maxLength: 63 },
    ),
  },
  {
    rules: [
      rule<{ count?: number; product?: string }>({
        rule: "!has(self.product) || (has(self.count) && self.count >= 1)",
        message: "gpu.product selects a GPU model, so gpu.count must be at least 1",
        fieldPath: ".count",
        reason: "FieldValueRequired",
        check: (g) => g.product === undefined || (g.count ?? 0) >= 1,
      }),
    ],
  },
);

const resources = object(
  "Compute resources of each serving replica.",
  {
    cpu: quantity(
      'CPU request of the serving container, e.g. "2" or "500m". No CPU limit is set, so batches are never throttled.',
      "cpu",
      "2 or 500m",
      { default: "1" },
    ),
    memory: quantity(
      'Memory request and limit of the serving container, e.g. "4Gi". Must hold the model and a full queue.',
      "memory",
      "4Gi or 512Mi",
      {
        default: "2Gi",
        rules: [
          wholeQuantityRule(
            "memory must be a whole number of bytes, at most 32Ti: 4Gi, 1536Mi or 1.5Gi, not 512m " +
              "(m, u and n are thousandths, millionths and billionths of a byte)",
          ),
        ],
      },
    ),
    gpu,
  },
  { default: {} },
);

const toleration = object(
  "A toleration added to the serving pods, as in a Pod spec.",
  {
    key: labelKey("Taint key to tolerate; empty with operator Exists tolerates every taint.", "key", {
      emptyOk: true,
    }),
    operator: stringEnum("Equal (key and value must match) or Exists (any value).", ["Equal", "Exists"] as const),
    value: labelValue("Taint value to match with operator Equal (a label value)."),
    effect: stringEnum("Taint effect to tolerate; empty tolerates all effects.", [
      "NoSchedule",
      "PreferNoSchedule",
      "NoExecute",
    ] as const),
    tolerationSeconds: integer("How long a NoExecute taint is tolerated before eviction; unset means forever.", {
      format: "int64",
    }),
  },
  {
    rules: [
      rule<{ operator?: string; value?: string }>({
        rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: "a toleration with operator Exists matches any value; remove value",
        fieldPath: ".value",
        reason: "FieldValueForbidden",
        check: (t) => t.operator !== "Exists" || t.value === undefined || t.value === "",
      }),
      rule<{ key?: string; operator?: string }>({
        rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
        message: "a toleration without a key must use operator Exists (it then tolerates every taint)",
        fieldPath: ".operator",
        reason: "FieldValueRequired",
        check: (t) => (t.key !== undefined && t.key !== "") || t.operator === "Exists",
      }),
      rule<{ effect?: string; tolerationSeconds?: number }>({
        rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        message: "tolerationSeconds only applies to effect NoExecute",
        fieldPath: ".tolerationSeconds",
        reason: "FieldValueForbidden",
        check: (t) => t.tolerationSeconds === undefined || t.effect === "NoExecute",
      }),
    ],
  },
);

const scheduling = object("Where the serving pods may run, in addition to the GPU product selector.", {
  nodeSelector: labelMap("Node labels the pods require, as in a Pod spec (e.g. disktype: ssd).", "nodeSelector", 32),
  tolerations: array("Tolerations added to the serving pods.", toleration, { maxItems: 32, listType: "atomic" }),
  affinity,
  priorityClassName: string("PriorityClass of the serving pods.", {
    pattern: DNS1123_SUBDOMAIN_PATTERN,
    maxLength: 253,
  }),
});

const serving = object(
  "How the serving container runs the model.",
  {
    backend: stringEnum(
      "TensorFlow.js backend. auto picks the best available: tensorflow-gpu (needs resources.gpu.count), " +
        "tensorflow (native CPU), wasm, cpu.",
      Backends,
      { default: "auto" },
    ),
    batching: object(
      "Dynamic batching: concurrent requests are merged into one model call.",
      {
        maxBatchSize: integer("Largest number of requests merged into one model call.", {
          minimum: 1,
          maximum: 1024,
          default: Defaults.maxBatchSize,
        }),
        maxDelayMs: integer("Longest a request waits for others to join its batch, in milliseconds.", {
          minimum: 0,
          maximum: 1000,
          default: Defaults.maxBatchDelayMs,
        }),
      },
      { default: {} },
    ),
    maxQueue: integer(
      "Requests waiting per replica; beyond it the server answers 429 with Retry-After instead of queueing without bound.",
      { minimum: 1, maximum: 100000, default: Defaults.maxQueue },
    ),
    requestTimeoutMs: integer("Per-request deadline in milliseconds; past it the request gets 504.", {
      minimum: 1,
      maximum: 600000,
      default: Defaults.requestTimeoutMs,
    }),
    workers: integer(
      "Inference worker threads per replica (wasm and cpu backends; the tensorflow backends use one and TensorFlow's own threads); unset or 0 means one per core the pod requests (resources.cpu, rounded up).",
      {
        minimum: 0,
        maximum: 64,
      },
    ),
  },
  { default: {} },
);

const metric = object(
  "The metric the autoscaler holds at target per replica.",
  {
    type: stringEnum(
      "RequestsPerSecond (target: requests per second per replica), Concurrency (in-flight requests per replica), " +
        "LatencyP95 (target: 95th percentile latency in seconds), or PromQL (your own query).",
      MetricTypes,
      { default: "RequestsPerSecond" },
    ),
    target: number("Value per replica the autoscaler aims for; must be greater than 0.", {
      minimum: 0,
      exclusiveMinimum: true,
    }),
    query: string(
      "PromQL for type PromQL only. Must return one sample: the current value averaged per ready replica " +
        "(desired replicas = ceil(ready replicas x value / target)). $namespace and $deployment are replaced by " +
        "this object's namespace and name (escaped for a quoted label value), $window by the window as a PromQL " +
        "duration (e.g. 60s): write rate(x[$window]) so the panic window reads the same query over its short window.",
      {
        minLength: 1,
        maxLength: 4096,
        rules: [
          rule<string>({
            // PromQL skips exactly these four characters as whitespace; a query of nothing else is empty.
            rule: `self.matches(${celString(PROMQL_NON_SPACE)})`,
            message: "query must be a PromQL expression, not only whitespace",
            check: (q) => matches(q, PROMQL_NON_SPACE),
          }),
        ],
      },
    ),
  },
  {
    required: ["target"],
    rules: [
      rule<{ type?: string; query?: string }>({
        rule: "self.type != 'PromQL' || has(self.query)",
        message: "metric type PromQL needs a query",
        fieldPath: ".query",
        reason: "FieldValueRequired",
        check: (m) => m.type !== "PromQL" || m.query !== undefined,
      }),
      rule<{ type?: string; query?: string }>({
        rule: "self.type == 'PromQL' || !has(self.query)",
        message: "query is only read for metric type PromQL; the other types use the operator's own query",
        fieldPath: ".query",
        reason: "FieldValueForbidden",
        check: (m) => m.type === "PromQL" || m.query === undefined,
      }),
    ],
  },
);

const autoscaling = object(
  "Scale replicas from Prometheus metrics between minReplicas and maxReplicas (stable and panic windows as in " +
    "Knative's autoscaler). Leave replicas unset when this is set.",
  {
    minReplicas: integer("Fewest replicas, also while metrics are unavailable.", {
      minimum: 1,
      maximum: 1000,
      default: 1,
    }),
    maxReplicas: integer("Most replicas.", { minimum: 1, maximum: 1000 }),
    metric,
    stableWindowSeconds: integer("Window the metric is averaged over for normal scaling decisions, in seconds.", {
      minimum: 6,
      maximum: 3600,
      default: 60,
    }),
    panicWindowSeconds: integer("Short window used to detect bursts, in seconds; at most stableWindowSeconds.", {
      minimum: 1,
      maximum: 600,
      default: 6,
    }),
    panicThreshold: number(
      "Panic mode starts when the panic-window metric per replica reaches panicThreshold x target; " +
        "in panic mode replicas only go up. At least 1.",
      { minimum: 1, maximum: 100, default: 2 },
    ),
    scaleDownDelaySeconds: integer(
      "A scale-down happens only after the lower recommendation held for this long, in seconds.",
      { minimum: 0, maximum: 3600, default: 300 },
    ),
    // A CEL rule instead of `maximum`: the API server prints a fractional maximum as an integer
    // ("should be less than or equal to 0"), which would mislead.
    tolerance: number("Relative deviation from target that causes no scaling, from 0 to 0.5 (0.1 = 10%).", {
      minimum: 0,
      default: 0.1,
      rules: [
        rule<number>({
          rule: "self <= 0.5",
          message: "tolerance must be at most 0.5 (50%)",
          check: (t) => t <= 0.5,
        }),
      ],
    }),
    maxScaleUpRate: number("Most replicas may grow in one step, as a factor of the current replicas.", {
      minimum: 1,
      maximum: 1000,
      default: 1000,
    }),
    maxScaleDownRate: number("Most replicas may shrink in one step, as a divisor of the current replicas.", {
      minimum: 1,
      maximum: 1000,
      default: 2,
    }),
  },
  {
    required: ["maxReplicas", "metric"],
    rules: [
      rule<{ minReplicas?: number; maxReplicas: number }>({
        rule: "self.minReplicas <= self.maxReplicas",
        message: "minReplicas must be less than or equal to maxReplicas",
        fieldPath: ".minReplicas",
        check: (a) => (a.minReplicas ?? 1) <= a.maxReplicas,
      }),
      rule<{ panicWindowSeconds?: number; stableWindowSeconds?: number }>({
        rule: "self.panicWindowSeconds <= self.stableWindowSeconds",
        message: "panicWindowSeconds must be less than or equal to stableWindowSeconds",
        fieldPath: ".panicWindowSeconds",
        check: (a) => (a.panicWindowSeconds ?? 6) <= (a.stableWindowSeconds ?? 60),
      }),
    ],
  },
);

interface SpecShape {
  model: { format?: string };
  scheduling?: { nodeSelector?: Record<string, string> };
  replicas?: number;
  autoscaling?: unknown;
  resources?: { gpu?: { count?: number; product?: string } };
  serving?: { backend?: string };
}

export const specSchema = object(
  "Desired state of a served model. The operator never writes spec; it creates a Deployment and a Service " +
    "named after this object.",
  {
    model,
    replicas: integer(
      "Fixed number of serving replicas (default 1 when neither replicas nor autoscaling is set). " +
        "Changed by kubectl scale. Leave unset when autoscaling is set.",
      { minimum: 0, maximum: 1000, format: "int32" },
    ),
    resources,
    scheduling,
    serving,
    autoscaling,
    image: string(
      "Serving image override, a container image reference ([registry[:port]/]path[:tag][@digest]); by default " +
        "the image matching the operator's version.",
      {
        minLength: 1,
        maxLength: 512,
        rules: [
          rule<string>({
            rule:
              `self.matches(${celString(IMAGE_REFERENCE_PATTERN)}) && ` +
              `self.matches(${celString(IMAGE_NAME_LENGTH_PATTERN)})`,
            message:
              "image must be a container image reference: [registry[:port]/]path[:tag][@sha256:<hex>], the path " +
              "in lowercase, the name before the tag at most 255 characters",
            check: (i) => matches(i, IMAGE_REFERENCE_PATTERN) && matches(i, IMAGE_NAME_LENGTH_PATTERN),
          }),
        ],
      },
    ),
  },
  {
    required: ["model"],
    rules: [
      rule<SpecShape>({
        rule: "!(has(self.replicas) && has(self.autoscaling))",
        message:
          "set either replicas (a fixed size) or autoscaling, not both; remove replicas to let the autoscaler size it",
        fieldPath: ".replicas",
        reason: "FieldValueForbidden",
        check: (s) => !(s.replicas !== undefined && s.autoscaling !== undefined),
      }),
      rule<SpecShape>({
        rule: "self.serving.backend != 'tensorflow-gpu' || (has(self.resources.gpu) && has(self.resources.gpu.count) && self.resources.gpu.count >= 1)",
        message: "backend tensorflow-gpu needs resources.gpu.count of at least 1",
        fieldPath: ".serving.backend",
        check: (s) => s.serving?.backend !== "tensorflow-gpu" || (s.resources?.gpu?.count ?? 0) >= 1,
      }),
      rule<SpecShape>({
        // The operator adds this selector itself; a different value in nodeSelector would be overridden.
        rule:
          "!has(self.resources.gpu) || !has(self.resources.gpu.product) || !has(self.scheduling) || " +
          `!has(self.scheduling.nodeSelector) || !(${celString(GPU_PRODUCT_LABEL)} in self.scheduling.nodeSelector) || ` +
          `self.scheduling.nodeSelector[${celString(GPU_PRODUCT_LABEL)}] == self.resources.gpu.product`,
        message:
          `scheduling.nodeSelector["${GPU_PRODUCT_LABEL}"] contradicts resources.gpu.product, which selects ` +
          "that label itself: remove it from nodeSelector or make the two equal",
        fieldPath: ".scheduling.nodeSelector",
        check: (s) => {
          const product = s.resources?.gpu?.product;
          const selected = s.scheduling?.nodeSelector?.[GPU_PRODUCT_LABEL];
          return product === undefined || selected === undefined || selected === product;
        },
      }),
      rule<SpecShape>({
        rule: "self.model.format != 'tf-saved-model' || self.serving.backend in ['auto', 'tensorflow', 'tensorflow-gpu']",
        message: "format tf-saved-model needs a native backend: auto, tensorflow or tensorflow-gpu",
        fieldPath: ".serving.backend",
        check: (s) =>
          s.model.format !== "tf-saved-model" ||
          (NativeBackends as readonly string[]).includes(s.serving?.backend ?? "auto"),
      }),
    ],
  },
);

/** Modes of the autoscaler, reported in status.autoscaling.mode. */
export const AutoscalingModes = ["Stable", "Panic", "Holding"] as const;
export type AutoscalingMode = (typeof AutoscalingModes)[number];

/** What can keep the autoscaler's decision from its recommendation (status.autoscaling.limitedBy). */
export const AutoscalingLimits = ["MaxReplicas", "ScaleUpRate", "ScaleDownRate"] as const;
export type AutoscalingLimit = (typeof AutoscalingLimits)[number];

const condition = object(
  "A condition in the standard Kubernetes form (metav1.Condition).",
  {
    type: string(
      "Condition type in CamelCase: Ready, ModelAvailable, Scheduled, Progressing, Degraded, Stalled, " +
        "ScalingActive, ScalingLimited.",
      {
        pattern:
          "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        maxLength: 316,
      },
    ),
    status: stringEnum("True, False or Unknown.", ["True", "False", "Unknown"] as const),
    observedGeneration: integer("metadata.generation the condition was computed from.", {
      minimum: 0,
      format: "int64",
    }),
    lastTransitionTime: string("When status last changed.", { format: "date-time" }),
    reason: string("Machine-readable CamelCase reason for the condition's last transition.", {
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
      minLength: 1,
      maxLength: 1024,
    }),
    message: string("What happened, in words a user can act on.", { maxLength: 32768 }),
  },
  { required: ["type", "status", "lastTransitionTime", "reason", "message"] },
);

const autoscalingStatus = object(
  "The autoscaler's last decision, why, and the state it needs to survive a restart or a change of operator " +
    "leader. Written only when the decision, the mode or the metric (by more than the tolerance) changes.",
  {
    mode: stringEnum(
      "Stable (normal), Panic (burst detected; replicas only go up) or Holding (metrics unavailable; replicas held).",
      AutoscalingModes,
    ),
    metricType: stringEnum("Metric type the decision used.", MetricTypes),
    currentMetric: number("Metric value per replica over the stable window when this status was written."),
    panicMetric: number("Metric value per replica over the panic window when this status was written."),
    target: number("Target per replica the decision aimed for."),
    desiredReplicas: integer("Replicas the autoscaler wants (within minReplicas..maxReplicas).", {
      minimum: 0,
      format: "int32",
    }),
    limitedBy: stringEnum(
      "What kept desiredReplicas from the recommendation: MaxReplicas, ScaleUpRate or ScaleDownRate; absent when nothing did.",
      AutoscalingLimits,
    ),
    lastEvaluationTime: string("When the metric values in this status were read.", { format: "date-time" }),
    lastScaleTime: string("When desiredReplicas last changed.", { format: "date-time" }),
    panicSince: string("When the current panic mode started; absent when not in panic.", { format: "date-time" }),
    holdingSince: string("Since when the metric has been unavailable; set in mode Holding only.", {
      format: "date-time",
    }),
    holdingReason: stringEnum(
      "Why the metric is unavailable (mode Holding only): PrometheusUnreachable, QueryFailed, MetricMissing or MetricInvalid.",
      Object.values(HoldingReasons),
    ),
    reason: string("Why desiredReplicas is what it is, in words.", { maxLength: 1024 }),
    recommendations: array(
      "Changes of the recommendation within the last scaleDownDelaySeconds, oldest first: each holds from its time " +
        "until the next one. The highest still in the window bounds a scale-down, so the delay survives a restart.",
      object(
        "One recommendation, in force from its time until the next.",
        {
          time: string("When it was made.", { format: "date-time" }),
          replicas: integer("Recommended replicas.", { minimum: 0, format: "int32" }),
        },
        { required: ["time", "replicas"] },
      ),
      { maxItems: 128, listType: "atomic" },
    ),
  },
);

// No defaults under status: the API server applies defaults on every read, so a defaulted status
// field the object does not store makes every later no-op apply a write (a new resourceVersion each
// time a GitOps tool applies the same manifest).
export const statusSchema = object("Observed state, written by the operator only.", {
  observedGeneration: integer(
    "metadata.generation this status describes; absent until the operator has seen the object.",
    {
      minimum: 0,
      format: "int64",
    },
  ),
  conditions: array(
    "Ready summarises the others: ModelAvailable, Scheduled, Progressing, Degraded, ScalingActive, ScalingLimited. " +
      "Stalled (kstatus' condition) is True, with the cause's reason, while Degraded is True, the model cannot be " +
      "fetched or loaded, or the rollout passed its progress deadline.",
    condition,
    { maxItems: 16, listType: "map", mapKeys: ["type"] },
  ),
  replicas: integer("Serving pods that exist (the Deployment's status.replicas).", { minimum: 0, format: "int32" }),
  readyReplicas: integer("Serving pods that are ready to answer requests.", { minimum: 0, format: "int32" }),
  replicasSummary: string("ready/desired, e.g. 2/3, for the Replicas column.", { maxLength: 32 }),
  selector: string("Label selector of the serving pods, for the scale subresource.", { maxLength: 1024 }),
  endpoint: string("In-cluster URL of the model server, e.g. http://sentiment.ml.svc:8080.", { maxLength: 512 }),
  autoscaling: autoscalingStatus,
});

export type ModelDeploymentSpec = Static<typeof specSchema>;
export type ModelDeploymentStatus = Static<typeof statusSchema>;
export type ModelSource = ModelDeploymentSpec["model"];
export type Resources = NonNullable<ModelDeploymentSpec["resources"]>;
export type GpuResources = NonNullable<Resources["gpu"]>;
export type Scheduling = NonNullable<ModelDeploymentSpec["scheduling"]>;
export type Toleration = NonNullable<Scheduling["tolerations"]>[number];
export type Serving = NonNullable<ModelDeploymentSpec["serving"]>;
export type Autoscaling = NonNullable<ModelDeploymentSpec["autoscaling"]>;
export type AutoscalingMetric = Autoscaling["metric"];
export type Condition = NonNullable<ModelDeploymentStatus["conditions"]>[number];
export type AutoscalingStatus = NonNullable<ModelDeploymentStatus["autoscaling"]>;
