/**
 * The Deployment a ModelDeployment wants: an init container that fetches the model into an
 * emptyDir, and the serving container that loads and serves it, both from the one serving image.
 * Pure: the same ModelDeployment always yields the same object, so server-side apply of it is a
 * no-op when nothing changed.
 */
import type {
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1PodTemplateSpec,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import type { ModelDeployment } from "../api/index.ts";
import { GPU_PRODUCT_LABEL } from "../api/names.ts";
import { parseQuantity } from "../api/quantity.ts";
import {
  Commands,
  ContainerNames,
  CredentialKeys,
  Defaults,
  Env,
  Paths,
  PortNames,
  Ports,
  Probes,
} from "../../../serving-image/src/contract.ts";
import { contentHash } from "./hash.ts";
import { Annotations, childLabels, ownerReference, selectorLabels, type Desired } from "./labels.ts";

/** The serving image the operator uses when neither spec.image nor --serving-image says otherwise. */
export const DEFAULT_SERVING_IMAGE = "ghcr.io/maas-dev/maas-serving:0.1.0";

export interface OperatorSettings {
  /** Serving image used when spec.image is empty. */
  servingImage: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
}

/** Taint that GPU node pools carry (NVIDIA's GPU operator and the cloud providers use this key). */
export const GPU_RESOURCE = "nvidia.com/gpu";
/** UID and GID of the serving image's non-root user. */
export const SERVING_UID = 65532;

const volumes = { models: "models", tmp: "tmp", modelSource: "model-source" } as const;

/** `pvc://claim/path` → the claim name, else undefined. */
export function pvcClaim(uri: string): string | undefined {
  const m = /^pvc:\/\/([^/]+)/.exec(uri);
  return m?.[1];
}

/**
 * Replicas the Deployment should have. With autoscaling, the autoscaler's last decision recorded in
 * status (clamped to the current bounds) — the reconciler stays the only writer of replicas.
 */
export function desiredReplicas(md: ModelDeployment): number {
  const a = md.spec.autoscaling;
  if (!a) return md.spec.replicas ?? 1;
  const min = a.minReplicas ?? 1;
  const wanted = md.status?.autoscaling?.desiredReplicas ?? min;
  return Math.min(a.maxReplicas, Math.max(min, wanted));
}

function gpuCount(md: ModelDeployment): number {
  return md.spec.resources?.gpu?.count ?? 0;
}

function fetchEnv(md: ModelDeployment): V1EnvVar[] {
  const m = md.spec.model;
  const env: V1EnvVar[] = [
    { name: Env.modelUri, value: m.uri },
    { name: Env.modelFormat, value: m.format ?? "tfjs-graph" },
    { name: Env.modelDir, value: Paths.fetchedModelDir },
    { name: Env.terminationMessagePath, value: Paths.terminationMessage },
  ];
  if (m.sha256) env.push({ name: Env.modelSha256, value: m.sha256 });
  if (pvcClaim(m.uri)) env.push({ name: Env.modelSourceDir, value: Paths.modelSourceDir });
  const secret = m.credentialsSecretRef?.name;
  if (secret) {
    // References only: the operator never reads the Secret's values, the kubelet injects them. The
    // keys the scheme cannot do without are required, so a missing or misspelt Secret or key stops
    // the pod with the kubelet's own words (CreateContainerConfigError), which status quotes.
    const required = requiredCredentialKeys(m.uri);
    const keys: [string, string][] = [
      [Env.awsAccessKeyId, CredentialKeys.awsAccessKeyId],
      [Env.awsSecretAccessKey, CredentialKeys.awsSecretAccessKey],
      [Env.awsRegion, CredentialKeys.awsRegion],
      [Env.s3Endpoint, CredentialKeys.s3Endpoint],
      [Env.httpAuthorization, CredentialKeys.httpAuthorization],
      [Env.awsSessionToken, CredentialKeys.awsSessionToken],
    ];
    for (const [name, key] of keys) {
      env.push({ name, valueFrom: { secretKeyRef: { name: secret, key, optional: !required.includes(key) } } });
    }
  }
  return env;
}

/**
 * Keys a credentials Secret must hold for the URI's scheme: an access key pair to sign S3 requests,
 * the Authorization header for http(s). Region, endpoint and session token stay optional.
 */
export function requiredCredentialKeys(uri: string): string[] {
  if (uri.startsWith("s3://")) return [CredentialKeys.awsAccessKeyId, CredentialKeys.awsSecretAccessKey];
  if (/^https?:\/\//.test(uri)) return [CredentialKeys.httpAuthorization];
  return [];
}

/** A CPU quantity rounded up to whole cores, at least one: "100m" → 1, "2" → 2, "2.5" → 3. */
export function wholeCores(cpu: string | number): number {
  const q = parseQuantity(String(cpu));
  if (q === undefined || q.num <= 0n) return 1;
  const cores = (q.num + q.den - 1n) / q.den;
  return cores > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(cores);
}

function serveEnv(md: ModelDeployment): V1EnvVar[] {
  const s = md.spec.serving ?? {};
  const m = md.spec.model;
  const env: V1EnvVar[] = [
    { name: Env.modelDir, value: Paths.fetchedModelDir },
    { name: Env.modelFormat, value: m.format ?? "tfjs-graph" },
    { name: Env.servedName, value: m.servedName ?? md.metadata.name! },
    { name: Env.backend, value: s.backend ?? "auto" },
    { name: Env.maxBatchSize, value: String(s.batching?.maxBatchSize ?? Defaults.maxBatchSize) },
    { name: Env.maxBatchDelayMs, value: String(s.batching?.maxDelayMs ?? Defaults.maxBatchDelayMs) },
    { name: Env.maxQueue, value: String(s.maxQueue ?? Defaults.maxQueue) },
    { name: Env.requestTimeoutMs, value: String(s.requestTimeoutMs ?? Defaults.requestTimeoutMs) },
    { name: Env.httpPort, value: String(Ports.http) },
    { name: Env.metricsPort, value: String(Ports.metrics) },
    { name: Env.deploymentName, value: md.metadata.name! },
    { name: Env.deploymentNamespace, value: md.metadata.namespace! },
    // A model that cannot load ends the container with the reason, which the status then quotes.
    { name: Env.exitOnLoadFailure, value: "true" },
    // Keep serving while the pod leaves the Service's endpoints, then drain (no refused connections in a rollout).
    { name: Env.shutdownDelayMs, value: String(Defaults.shutdownDelayMs) },
    { name: Env.terminationMessagePath, value: Paths.terminationMessage },
  ];
  if (m.version) env.push({ name: Env.modelVersion, value: m.version });
  // The image sizes its workers (wasm) and TensorFlow's threads by the cores the pod asked for, not by
  // the node's cores, which a pod without a CPU limit sees all of.
  env.push({ name: Env.cpus, value: String(wholeCores(md.spec.resources?.cpu ?? "1")) });
  if (s.workers) env.push({ name: Env.workers, value: String(s.workers) });
  return env;
}

const containerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
};

function fetchContainer(md: ModelDeployment, image: string, pullPolicy: string | undefined): V1Container {
  const mounts: V1VolumeMount[] = [
    { name: volumes.models, mountPath: Paths.modelDir },
    { name: volumes.tmp, mountPath: Paths.tmpDir },
  ];
  const claim = pvcClaim(md.spec.model.uri);
  if (claim) mounts.push({ name: volumes.modelSource, mountPath: Paths.modelSourceDir, readOnly: true });
  return {
    name: ContainerNames.fetch,
    image,
    ...(pullPolicy ? { imagePullPolicy: pullPolicy } : {}),
    command: [Commands.binary, Commands.fetch],
    env: fetchEnv(md),
    volumeMounts: mounts,
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    securityContext: containerSecurity,
    terminationMessagePath: Paths.terminationMessage,
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function serveContainer(md: ModelDeployment, image: string, pullPolicy: string | undefined): V1Container {
  const r = md.spec.resources ?? {};
  const gpus = gpuCount(md);
  const memory = r.memory ?? "2Gi";
  return {
    name: ContainerNames.serve,
    image,
    ...(pullPolicy ? { imagePullPolicy: pullPolicy } : {}),
    command: [Commands.binary, Commands.serve],
    env: serveEnv(md),
    ports: [
      { name: PortNames.http, containerPort: Ports.http, protocol: "TCP" },
      { name: PortNames.metrics, containerPort: Ports.metrics, protocol: "TCP" },
    ],
    volumeMounts: [
      { name: volumes.models, mountPath: Paths.modelDir, readOnly: true },
      { name: volumes.tmp, mountPath: Paths.tmpDir },
    ],
    // No CPU limit: CFS throttling in the middle of a batch is worse than sharing a core.
    resources: {
      requests: { cpu: String(r.cpu ?? "1"), memory: String(memory) },
      limits: { memory: String(memory), ...(gpus > 0 ? { [GPU_RESOURCE]: String(gpus) } : {}) },
    },
    // Startup covers model load and warm-up (up to 10 minutes for big models); readiness then
    // follows the model and the drain on SIGTERM; liveness only asks whether the process answers.
    startupProbe: { httpGet: { path: Probes.live, port: PortNames.http }, periodSeconds: 2, failureThreshold: 300 },
    readinessProbe: { httpGet: { path: Probes.ready, port: PortNames.http }, periodSeconds: 2, failureThreshold: 2 },
    livenessProbe: {
      httpGet: { path: Probes.live, port: PortNames.http },
      periodSeconds: 10,
      failureThreshold: 3,
      timeoutSeconds: 5,
    },
    securityContext: containerSecurity,
    terminationMessagePath: Paths.terminationMessage,
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function tolerations(md: ModelDeployment): V1Toleration[] {
  const out: V1Toleration[] = (md.spec.scheduling?.tolerations ?? []).map((t) => ({ ...t }));
  if (gpuCount(md) > 0) out.push({ key: GPU_RESOURCE, operator: "Exists", effect: "NoSchedule" });
  return out;
}

/** The revision of the pod template a desired Deployment carries (see `Annotations.templateHash`). */
export function templateHashOf(d: V1Deployment): string | undefined {
  return d.spec?.template.metadata?.annotations?.[Annotations.templateHash];
}

/**
 * The full desired Deployment, ready for server-side apply under the operator's field manager. Its
 * pod template carries a hash of itself, so pods say which revision they run.
 */
export function desiredDeployment(md: ModelDeployment, settings: OperatorSettings): Desired<V1Deployment> {
  const name = md.metadata.name!;
  const image = md.spec.image ?? settings.servingImage;
  const pull = settings.imagePullPolicy;
  const sched = md.spec.scheduling ?? {};
  const gpus = gpuCount(md);
  const product = md.spec.resources?.gpu?.product;
  const nodeSelector: Record<string, string> = { ...(sched.nodeSelector ?? {}) };
  if (product) nodeSelector[GPU_PRODUCT_LABEL] = product;
  const podVolumes: V1Volume[] = [
    { name: volumes.models, emptyDir: {} },
    { name: volumes.tmp, emptyDir: { medium: "Memory", sizeLimit: "256Mi" } },
  ];
  const claim = pvcClaim(md.spec.model.uri);
  if (claim)
    podVolumes.push({ name: volumes.modelSource, persistentVolumeClaim: { claimName: claim, readOnly: true } });
  const labels = childLabels(md);
  const template: V1PodTemplateSpec = {
    metadata: {
      labels,
      annotations: {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(Ports.metrics),
        "prometheus.io/path": Probes.metrics,
      },
    },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: SERVING_UID,
        runAsGroup: SERVING_UID,
        fsGroup: SERVING_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      // Longer than the image's drain timeout, so accepted requests finish before SIGKILL.
      terminationGracePeriodSeconds: Math.ceil((Defaults.shutdownDelayMs + Defaults.drainTimeoutMs) / 1000) + 15,
      initContainers: [fetchContainer(md, image, pull)],
      containers: [serveContainer(md, image, pull)],
      volumes: podVolumes,
      ...(Object.keys(nodeSelector).length ? { nodeSelector } : {}),
      ...(tolerations(md).length ? { tolerations: tolerations(md) } : {}),
      // Affinity is passed through as written; the API server validates it when pods are created.
      ...(sched.affinity ? { affinity: sched.affinity } : {}),
      ...(sched.priorityClassName ? { priorityClassName: sched.priorityClassName } : {}),
    },
  };
  template.metadata!.annotations![Annotations.templateHash] = contentHash(template);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace: md.metadata.namespace!, labels, ownerReferences: [ownerReference(md)] },
    spec: {
      replicas: desiredReplicas(md),
      selector: { matchLabels: selectorLabels(md) },
      // GPU replicas roll one at a time without a surge pod, so a rollout never needs spare GPUs;
      // CPU replicas surge first, so capacity never dips.
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: gpus > 0 ? { maxSurge: 0, maxUnavailable: 1 } : { maxSurge: 1, maxUnavailable: 0 },
      },
      // A pod may fetch for up to the fetch deadline before it starts; only after that (and a
      // margin to load the model) is a rollout without progress worth a ProgressDeadlineExceeded.
      progressDeadlineSeconds: Math.ceil(Defaults.fetchDeadlineMs / 1000) + 600,
      revisionHistoryLimit: 3,
      template,
    },
  };
}
