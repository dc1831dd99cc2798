/**
 * Invalid ModelDeployments, each with the field its error must name. Used twice: by the unit tests
 * against the runtime validator and by the integration tests against the real API server.
 */

type Json = Record<string, unknown>;

/**
 * The most the CRD may take as kubectl's last-applied annotation: half of the API server's 256 KiB
 * annotation limit, so client-side apply keeps working with room to grow. (The full core/v1 Affinity
 * schema is most of it: a structural schema has no $ref, so its pod affinity term appears four times.)
 */
export const CRD_ANNOTATION_BUDGET_BYTES = 128 * 1024;

const URI = "https://models.example.com/m/model.json";

/** A valid ModelDeployment with `spec` (and optionally `name`) replaced. */
export function manifest(spec: Json, name = "corpus"): Json {
  return { apiVersion: "maas.dev/v1alpha1", kind: "ModelDeployment", metadata: { name }, spec };
}

const model = (m: Json = {}): Json => ({ uri: URI, ...m });
const withScheduling = (scheduling: Json, spec: Json = {}): Json => manifest({ model: model(), ...spec, scheduling });
const withAffinity = (affinity: Json): Json => withScheduling({ affinity });

/** A label key whose DNS-subdomain prefix has exactly `length` characters. */
export function prefixedKey(length: number, name = "gpu"): string {
  const labels: string[] = [];
  let left = length;
  while (left > 0) {
    const n = Math.min(63, left === 64 ? 62 : left);
    labels.push("a".repeat(n));
    left -= n + (left - n > 0 ? 1 : 0);
  }
  return `${labels.join(".")}/${name}`;
}

const NODE_TERMS = "spec.scheduling.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const NODE_PREFERRED = "spec.scheduling.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution";
const POD_TERMS = "spec.scheduling.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const ANTI_PREFERRED = "spec.scheduling.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution";
/** Node affinity with one required term of one requirement. */
const nodeRequirement = (requirement: Json): Json =>
  withAffinity({
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [requirement] }] },
    },
  });
/** Pod affinity with one required term: every pod on the same node, unless `term` says otherwise. */
const podTerm = (term: Json): Json =>
  withAffinity({
    podAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { topologyKey: "kubernetes.io/hostname", labelSelector: {}, ...term },
      ],
    },
  });
const withAutoscaling = (a: Json, metric: Json = {}): Json =>
  manifest({ model: model(), autoscaling: { maxReplicas: 4, ...a, metric: { target: 10, ...metric } } });

/** The smallest valid spec, and the same spec once the API server has applied its defaults. */
export const minimalSpec = { model: { uri: "https://models.example.com/m/model.json" } };
export const minimalSpecDefaulted = {
  model: { uri: "https://models.example.com/m/model.json", format: "tfjs-graph" },
  resources: { cpu: "1", memory: "2Gi" },
  serving: {
    backend: "auto",
    batching: { maxBatchSize: 32, maxDelayMs: 0 },
    maxQueue: 256,
    requestTimeoutMs: 30000,
  },
};

export interface InvalidCase {
  /** What is wrong, as a sentence fragment. */
  readonly what: string;
  /** The field path the API server's error must name. */
  readonly field: string;
  readonly manifest: Json;
}

export const invalidCases: readonly InvalidCase[] = [
  // Autoscaling bounds and windows.
  {
    what: "minReplicas greater than maxReplicas",
    field: "spec.autoscaling.minReplicas",
    manifest: withAutoscaling({ minReplicas: 5, maxReplicas: 2 }),
  },
  { what: "minReplicas of 0", field: "spec.autoscaling.minReplicas", manifest: withAutoscaling({ minReplicas: 0 }) },
  {
    what: "maxReplicas missing",
    field: "spec.autoscaling.maxReplicas",
    manifest: manifest({ model: model(), autoscaling: { metric: { target: 1 } } }),
  },
  {
    what: "both replicas and autoscaling",
    field: "spec.replicas",
    manifest: manifest({ model: model(), replicas: 2, autoscaling: { maxReplicas: 3, metric: { target: 5 } } }),
  },
  { what: "a target of zero", field: "spec.autoscaling.metric.target", manifest: withAutoscaling({}, { target: 0 }) },
  { what: "a negative target", field: "spec.autoscaling.metric.target", manifest: withAutoscaling({}, { target: -5 }) },
  {
    what: "no target",
    field: "spec.autoscaling.metric.target",
    manifest: manifest({ model: model(), autoscaling: { maxReplicas: 2, metric: { type: "Concurrency" } } }),
  },
  {
    what: "a PromQL metric without a query",
    field: "spec.autoscaling.metric.query",
    manifest: withAutoscaling({}, { type: "PromQL" }),
  },
  {
    what: "a query with a built-in metric type",
    field: "spec.autoscaling.metric.query",
    manifest: withAutoscaling({}, { type: "Concurrency", query: "sum(up)" }),
  },
  {
    what: "an unknown metric type",
    field: "spec.autoscaling.metric.type",
    manifest: withAutoscaling({}, { type: "GPUUtilization" }),
  },
  {
    what: "a panic threshold below 1",
    field: "spec.autoscaling.panicThreshold",
    manifest: withAutoscaling({ panicThreshold: 0.5 }),
  },
  {
    what: "a stable window below 6 seconds",
    field: "spec.autoscaling.stableWindowSeconds",
    manifest: withAutoscaling({ stableWindowSeconds: 3, panicWindowSeconds: 1 }),
  },
  {
    what: "a stable window above an hour",
    field: "spec.autoscaling.stableWindowSeconds",
    manifest: withAutoscaling({ stableWindowSeconds: 7200 }),
  },
  {
    what: "a panic window longer than the stable window",
    field: "spec.autoscaling.panicWindowSeconds",
    manifest: withAutoscaling({ stableWindowSeconds: 10, panicWindowSeconds: 20 }),
  },
  {
    what: "a panic window of 0",
    field: "spec.autoscaling.panicWindowSeconds",
    manifest: withAutoscaling({ panicWindowSeconds: 0 }),
  },
  {
    what: "a negative scale-down delay",
    field: "spec.autoscaling.scaleDownDelaySeconds",
    manifest: withAutoscaling({ scaleDownDelaySeconds: -1 }),
  },
  { what: "a tolerance above 0.5", field: "spec.autoscaling.tolerance", manifest: withAutoscaling({ tolerance: 2 }) },
  // Replicas.
  { what: "negative replicas", field: "spec.replicas", manifest: manifest({ model: model(), replicas: -1 }) },
  { what: "fractional replicas", field: "spec.replicas", manifest: manifest({ model: model(), replicas: 1.5 }) },
  // GPUs and resources.
  {
    what: "a negative GPU count",
    field: "spec.resources.gpu.count",
    manifest: manifest({ model: model(), resources: { gpu: { count: -1 } } }),
  },
  {
    what: "a fractional GPU count",
    field: "spec.resources.gpu.count",
    manifest: manifest({ model: model(), resources: { gpu: { count: 0.5 } } }),
  },
  {
    what: "more than 16 GPUs",
    field: "spec.resources.gpu.count",
    manifest: manifest({ model: model(), resources: { gpu: { count: 17 } } }),
  },
  {
    what: "a GPU product without a count",
    field: "spec.resources.gpu.count",
    manifest: manifest({ model: model(), resources: { gpu: { product: "NVIDIA-A100-SXM4-80GB" } } }),
  },
  {
    what: "a GPU product with a count of 0",
    field: "spec.resources.gpu.count",
    manifest: manifest({ model: model(), resources: { gpu: { count: 0, product: "NVIDIA-A100-SXM4-80GB" } } }),
  },
  {
    what: "a GPU product that is not a label value",
    field: "spec.resources.gpu.product",
    manifest: manifest({ model: model(), resources: { gpu: { count: 1, product: "NVIDIA A100" } } }),
  },
  {
    what: "a negative CPU",
    field: "spec.resources.cpu",
    manifest: manifest({ model: model(), resources: { cpu: -1 } }),
  },
  {
    what: "memory that is not a quantity",
    field: "spec.resources.memory",
    manifest: manifest({ model: model(), resources: { memory: "lots" } }),
  },
  {
    what: "a negative memory string",
    field: "spec.resources.memory",
    manifest: manifest({ model: model(), resources: { memory: "-4Gi" } }),
  },
  // Serving.
  {
    what: "an unknown backend",
    field: "spec.serving.backend",
    manifest: manifest({ model: model(), serving: { backend: "onnx" } }),
  },
  {
    what: "backend tensorflow-gpu without GPUs",
    field: "spec.serving.backend",
    manifest: manifest({ model: model(), serving: { backend: "tensorflow-gpu" } }),
  },
  {
    what: "a SavedModel on the wasm backend",
    field: "spec.serving.backend",
    manifest: manifest({
      model: model({ uri: "pvc://models/saved", format: "tf-saved-model" }),
      serving: { backend: "wasm" },
    }),
  },
  {
    what: "a batch size of 0",
    field: "spec.serving.batching.maxBatchSize",
    manifest: manifest({ model: model(), serving: { batching: { maxBatchSize: 0 } } }),
  },
  {
    what: "a queue bound of 0",
    field: "spec.serving.maxQueue",
    manifest: manifest({ model: model(), serving: { maxQueue: 0 } }),
  },
  // Model source.
  { what: "no model uri", field: "spec.model.uri", manifest: manifest({ model: { format: "tfjs-graph" } }) },
  {
    what: "an unknown model format",
    field: "spec.model.format",
    manifest: manifest({ model: model({ format: "onnx" }) }),
  },
  {
    what: "an ftp uri",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "ftp://models.example.com/m/model.json" }) }),
  },
  {
    what: "an https uri without a host",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https:///m/model.json" }) }),
  },
  {
    what: "a gs uri (fetch reaches GCS through s3://)",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "gs://bucket/m/model.json" }) }),
  },
  {
    what: "an s3 uri naming a prefix",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "s3://bucket/m/" }) }),
  },
  {
    what: "an s3 tfjs uri that is not a model.json",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "s3://bucket/m/weights.bin" }) }),
  },
  {
    what: "a SavedModel in s3",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "s3://bucket/saved/saved_model.pb", format: "tf-saved-model" }) }),
  },
  {
    what: "a pvc path that leaves the volume",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "pvc://models/../etc/model.json" }) }),
  },
  {
    what: "a uri with a space",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/my model/model.json" }) }),
  },
  {
    what: "a SavedModel over https",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/saved/", format: "tf-saved-model" }) }),
  },
  {
    what: "an https tfjs uri that is not a model.json",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/m/" }) }),
  },
  {
    what: "a pvc uri with an invalid claim name",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "pvc://Models_Claim/m" }) }),
  },
  {
    what: "a relative file uri",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "file://models/m/model.json" }) }),
  },
  {
    what: "an s3 uri with an invalid bucket",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "s3://B/m/model.json" }) }),
  },
  {
    what: "a sha256 in uppercase",
    field: "spec.model.sha256",
    manifest: manifest({
      model: model({ sha256: "3F79BB7B435B05321651DAEFD374CDC681DC06FAA65E374E38337B88CA046DEA" }),
    }),
  },
  {
    what: "a sha256 that is too short",
    field: "spec.model.sha256",
    manifest: manifest({ model: model({ sha256: "3f79bb7b" }) }),
  },
  {
    what: "a served name with a slash",
    field: "spec.model.servedName",
    manifest: manifest({ model: model({ servedName: "team/model" }) }),
  },
  {
    what: "credentials for a pvc uri",
    field: "spec.model.credentialsSecretRef",
    manifest: manifest({ model: model({ uri: "pvc://models/m/model.json", credentialsSecretRef: { name: "store" } }) }),
  },
  {
    what: "a credentials reference without a name",
    field: "spec.model.credentialsSecretRef.name",
    manifest: manifest({ model: model({ credentialsSecretRef: {} }) }),
  },
  // Scheduling.
  {
    what: "an unknown toleration effect",
    field: "spec.scheduling.tolerations[0].effect",
    manifest: manifest({
      model: model(),
      scheduling: { tolerations: [{ key: "gpu", operator: "Exists", effect: "NoRun" }] },
    }),
  },
  {
    what: "a toleration with operator Exists and a value",
    field: "spec.scheduling.tolerations[0].value",
    manifest: manifest({
      model: model(),
      scheduling: { tolerations: [{ key: "gpu", operator: "Exists", value: "x" }] },
    }),
  },
  {
    what: "a toleration without a key whose operator is not Exists",
    field: "spec.scheduling.tolerations[0].operator",
    manifest: manifest({ model: model(), scheduling: { tolerations: [{ effect: "NoSchedule" }] } }),
  },
  {
    what: "tolerationSeconds with an effect other than NoExecute",
    field: "spec.scheduling.tolerations[0].tolerationSeconds",
    manifest: manifest({
      model: model(),
      scheduling: { tolerations: [{ key: "gpu", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 30 }] },
    }),
  },
  {
    what: "a nodeSelector key that is not a label key",
    field: "spec.scheduling.nodeSelector",
    manifest: manifest({ model: model(), scheduling: { nodeSelector: { "disk type": "ssd" } } }),
  },
  {
    what: "a nodeSelector value that is not a label value",
    field: "spec.scheduling.nodeSelector.disktype",
    manifest: manifest({ model: model(), scheduling: { nodeSelector: { disktype: "fast ssd" } } }),
  },
  // Unknown fields (strict field validation).
  {
    what: "an unknown field in spec",
    field: "spec.replicaCount",
    manifest: manifest({ model: model(), replicaCount: 2 }),
  },
  {
    what: "an unknown field in the model",
    field: "spec.model.url",
    manifest: manifest({ model: model({ url: URI }) }),
  },
  {
    what: "an unknown field in autoscaling",
    field: "spec.autoscaling.targetRPS",
    manifest: withAutoscaling({ targetRPS: 5 }),
  },
  // What the CRD used to accept and the pod then refused (issue 9: admission equals run time).
  {
    what: "a uri with a non-ASCII space (U+00A0), which RE2's \\s does not match",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/m\u00a0x/model.json" }) }),
  },
  {
    what: "a uri with a backslash",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/m\\x/model.json" }) }),
  },
  {
    what: "a uri with a broken percent-encoding",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/m/%ZZ/model.json" }) }),
  },
  {
    what: "credentials in the uri",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://reader:secret@models.example.com/m/model.json" }) }),
  },
  {
    what: "a port out of range",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com:65536/m/model.json" }) }),
  },
  {
    what: "an https path with an empty segment",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "https://models.example.com/m//model.json" }) }),
  },
  {
    what: "a percent-encoded .. in a pvc path",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "pvc://models/%2e%2e/etc/model.json" }) }),
  },
  {
    what: "a file uri with a host",
    field: "spec.model.uri",
    manifest: manifest({ model: model({ uri: "file://localhost/srv/m/model.json" }) }),
  },
  {
    what: "a version the serving image cannot parse (v3)",
    field: "spec.model.version",
    manifest: manifest({ model: model({ version: "v3" }) }),
  },
  {
    what: "a served name with a non-ASCII letter",
    field: "spec.model.servedName",
    manifest: manifest({ model: model({ servedName: "modèle" }) }),
  },
  {
    what: "memory in thousandths of a byte (512m)",
    field: "spec.resources.memory",
    manifest: manifest({ model: model(), resources: { memory: "512m" } }),
  },
  {
    what: "memory above 32Ti",
    field: "spec.resources.memory",
    manifest: manifest({ model: model(), resources: { memory: "33Ti" } }),
  },
  {
    what: "a cpu quantity without a number (m)",
    field: "spec.resources.cpu",
    manifest: manifest({ model: model(), resources: { cpu: "m" } }),
  },
  {
    what: "a toleration key that is not a label key",
    field: "spec.scheduling.tolerations[0].key",
    manifest: withScheduling({ tolerations: [{ key: "gpu type", operator: "Exists" }] }),
  },
  {
    what: "a toleration value that is not a label value",
    field: "spec.scheduling.tolerations[0].value",
    manifest: withScheduling({ tolerations: [{ key: "gpu", operator: "Equal", value: "a/b" }] }),
  },
  {
    what: "a nodeSelector key with a prefix of 254 characters",
    field: "spec.scheduling.nodeSelector",
    manifest: withScheduling({ nodeSelector: { [prefixedKey(254)]: "x" } }),
  },
  {
    what: "a nodeSelector key with a name of 64 characters",
    field: "spec.scheduling.nodeSelector",
    manifest: withScheduling({ nodeSelector: { [`example.com/${"n".repeat(64)}`]: "x" } }),
  },
  {
    what: "a nodeSelector on nvidia.com/gpu.product that contradicts resources.gpu.product",
    field: "spec.scheduling.nodeSelector",
    manifest: withScheduling(
      { nodeSelector: { "nvidia.com/gpu.product": "NVIDIA-A10G" } },
      { resources: { gpu: { count: 1, product: "NVIDIA-H100-80GB-HBM3" } } },
    ),
  },
  {
    what: "a PromQL query of only whitespace",
    field: "spec.autoscaling.metric.query",
    manifest: withAutoscaling({}, { type: "PromQL", query: " \t\n" }),
  },
  {
    what: "an image with a non-ASCII space",
    field: "spec.image",
    manifest: manifest({ model: model(), image: "registry.example.com/maas-serving:0.1.0\u00a0" }),
  },
  {
    what: "an image with an uppercase path",
    field: "spec.image",
    manifest: manifest({ model: model(), image: "registry.example.com/MaaS/serving:0.1.0" }),
  },
  // Affinity, with core/v1's schema and the API server's Pod checks.
  {
    what: "a typo in affinity (nodeAfinity)",
    field: "spec.scheduling.affinity.nodeAfinity",
    manifest: withAffinity({ nodeAfinity: {} }),
  },
  {
    what: "required node affinity without nodeSelectorTerms",
    field: `${NODE_TERMS}.nodeSelectorTerms`,
    manifest: withAffinity({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } }),
  },
  {
    what: "required node affinity with no terms",
    field: `${NODE_TERMS}.nodeSelectorTerms`,
    manifest: withAffinity({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
    }),
  },
  {
    what: "a node selector requirement with an unknown operator",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].operator`,
    manifest: nodeRequirement({ key: "disktype", operator: "Equals", values: ["ssd"] }),
  },
  {
    what: "a node selector requirement In without values",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].values`,
    manifest: nodeRequirement({ key: "disktype", operator: "In" }),
  },
  {
    what: "a node selector requirement Exists with values",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].values`,
    manifest: nodeRequirement({ key: "disktype", operator: "Exists", values: ["ssd"] }),
  },
  {
    what: "a node selector requirement Gt with a value that is not an integer",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].values`,
    manifest: nodeRequirement({ key: "gpu-count", operator: "Gt", values: ["four"] }),
  },
  {
    what: "a node selector requirement whose key is not a label key",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].key`,
    manifest: nodeRequirement({ key: "disk type", operator: "Exists" }),
  },
  {
    what: "a node selector requirement value that is not a label value",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchExpressions[0].values[0]`,
    manifest: nodeRequirement({ key: "disktype", operator: "In", values: ["fast ssd"] }),
  },
  {
    what: "a matchFields key other than metadata.name",
    field: `${NODE_TERMS}.nodeSelectorTerms[0].matchFields[0].key`,
    manifest: withAffinity({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: "metadata.namespace", operator: "In", values: ["x"] }] }],
        },
      },
    }),
  },
  {
    what: "a preferred node term with weight 0",
    field: `${NODE_PREFERRED}[0].weight`,
    manifest: withAffinity({
      nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 0, preference: {} }] },
    }),
  },
  {
    what: "a preferred node term with weight 101",
    field: `${NODE_PREFERRED}[0].weight`,
    manifest: withAffinity({
      nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, preference: {} }] },
    }),
  },
  {
    what: "a preferred node term without preference",
    field: `${NODE_PREFERRED}[0].preference`,
    manifest: withAffinity({ nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 5 }] } }),
  },
  {
    what: "a pod affinity term without topologyKey",
    field: `${POD_TERMS}[0].topologyKey`,
    manifest: withAffinity({
      podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: {} }] },
    }),
  },
  {
    what: "a topologyKey that is not a label key",
    field: `${POD_TERMS}[0].topologyKey`,
    manifest: podTerm({ topologyKey: "topology.kubernetes.io/zone/x" }),
  },
  {
    what: "a pod affinity namespace that is not a namespace name",
    field: `${POD_TERMS}[0].namespaces[0]`,
    manifest: podTerm({ namespaces: ["Team_A"] }),
  },
  {
    what: "a label selector value that is not a label value",
    field: `${POD_TERMS}[0].labelSelector.matchExpressions[0].values[0]`,
    manifest: podTerm({ labelSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["a b"] }] } }),
  },
  {
    what: "a label selector requirement NotIn without values",
    field: `${POD_TERMS}[0].labelSelector.matchExpressions[0].values`,
    manifest: podTerm({ labelSelector: { matchExpressions: [{ key: "app", operator: "NotIn" }] } }),
  },
  {
    what: "a label selector requirement DoesNotExist with values",
    field: `${POD_TERMS}[0].labelSelector.matchExpressions[0].values`,
    manifest: podTerm({
      labelSelector: { matchExpressions: [{ key: "app", operator: "DoesNotExist", values: ["x"] }] },
    }),
  },
  {
    what: "a matchLabels key that is not a label key",
    field: `${POD_TERMS}[0].labelSelector.matchLabels`,
    manifest: podTerm({ labelSelector: { matchLabels: { "-app": "x" } } }),
  },
  {
    what: "a pod affinity term without labelSelector (it would match no pod)",
    field: `${POD_TERMS}[0].labelSelector`,
    manifest: podTerm({ matchLabelKeys: ["app"], labelSelector: undefined }),
  },
  {
    what: "a key in both matchLabelKeys and mismatchLabelKeys",
    field: `${POD_TERMS}[0].matchLabelKeys`,
    manifest: podTerm({ labelSelector: {}, matchLabelKeys: ["app"], mismatchLabelKeys: ["app"] }),
  },
  {
    what: "matchLabelKeys repeating a key of the labelSelector",
    field: `${POD_TERMS}[0].labelSelector`,
    manifest: podTerm({ labelSelector: { matchLabels: { app: "x" } }, matchLabelKeys: ["app"] }),
  },
  {
    what: "a matchLabelKeys entry that is not a label key",
    field: `${POD_TERMS}[0].matchLabelKeys[0]`,
    manifest: podTerm({ labelSelector: {}, matchLabelKeys: ["a/b/c"] }),
  },
  {
    what: "a mismatchLabelKeys entry that is not a label key",
    field: `${POD_TERMS}[0].mismatchLabelKeys[0]`,
    manifest: podTerm({ labelSelector: {}, mismatchLabelKeys: ["_app"] }),
  },
  {
    what: "a weighted pod anti-affinity term without podAffinityTerm",
    field: `${ANTI_PREFERRED}[0].podAffinityTerm`,
    manifest: withAffinity({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10 }] } }),
  },
  // Names that do not fit the derived children.
  {
    what: "a name longer than 46 characters",
    field: "metadata.name",
    manifest: manifest({ model: model() }, "a".repeat(47)),
  },
  {
    what: "a name with a dot (not a Service name)",
    field: "metadata.name",
    manifest: manifest({ model: model() }, "sentiment.v2"),
  },
  { what: "a name starting with a digit", field: "metadata.name", manifest: manifest({ model: model() }, "3d-unet") },
];
