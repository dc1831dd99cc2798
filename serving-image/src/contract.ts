/**
 * The contract between the maas operator and the maas serving image.
 *
 * The operator renders the pod; the image reads only what the pod gives it. Both sides import this
 * module (and nothing else from each other), so environment names, ports, paths, labels and metric
 * names cannot drift. This module must stay free of imports and I/O.
 */

/** Environment variables the operator sets on the `fetch` init container and the `serve` container. */
export const Env = {
  /** Model URI as written in `spec.model.uri` (https, http, s3, gs, pvc, file). */
  modelUri: "MAAS_MODEL_URI",
  /** `tfjs-graph` | `tfjs-layers` | `tf-saved-model`. */
  modelFormat: "MAAS_MODEL_FORMAT",
  /** Optional lowercase hex sha256 that `fetch` verifies. */
  modelSha256: "MAAS_MODEL_SHA256",
  /** Name clients use in `/v1/models/{name}` and `/v2/models/{name}`. */
  servedName: "MAAS_SERVED_NAME",
  /** Version reported by `/v1` status and `/v2` metadata. */
  modelVersion: "MAAS_MODEL_VERSION",
  /** Directory the model is fetched into and served from. */
  modelDir: "MAAS_MODEL_DIR",
  /** `auto` | `tensorflow-gpu` | `tensorflow` | `wasm` | `cpu`. */
  backend: "MAAS_BACKEND",
  maxBatchSize: "MAAS_MAX_BATCH_SIZE",
  maxBatchDelayMs: "MAAS_MAX_BATCH_DELAY_MS",
  maxQueue: "MAAS_MAX_QUEUE",
  /** Per-request deadline in milliseconds; past it the request gets 504. */
  requestTimeoutMs: "MAAS_REQUEST_TIMEOUT_MS",
  /** Number of inference workers (threads); 0 or unset = one per core (MAAS_CPUS, else the machine's). */
  workers: "MAAS_WORKERS",
  /**
   * The cores the container asked for (its CPU request, rounded up; the operator sets it). It sizes
   * the default number of wasm workers and TensorFlow's intra-op threads; unset = the machine's cores.
   */
  cpus: "MAAS_CPUS",
  httpPort: "MAAS_HTTP_PORT",
  metricsPort: "MAAS_METRICS_PORT",
  /** Largest request body `serve` accepts, in bytes; larger bodies get 413. */
  maxBodyBytes: "MAAS_MAX_BODY_BYTES",
  /** A request body must arrive completely within this many milliseconds, or the request gets 408. */
  bodyTimeoutMs: "MAAS_BODY_TIMEOUT_MS",
  /**
   * A request body whose first bytes take longer than this to follow its headers, or that stalls this
   * long later, gets 408 and its connection is closed.
   */
  bodyIdleTimeoutMs: "MAAS_BODY_IDLE_TIMEOUT_MS",
  /**
   * Bytes of request bodies `serve` holds at once (bodies arriving, queued or running); a request that
   * would exceed it gets 429. Unset: a quarter of the smaller of the container's memory limit and the
   * JS heap limit.
   */
  bodyMemoryBytes: "MAAS_BODY_MEMORY_BYTES",
  /**
   * Request bodies one client address may be sending at once; more get 429. 0: no limit. Unset: an
   * eighth of MAAS_MAX_QUEUE (at least 1), so slow senders need eight addresses to fill the queue.
   */
  maxBodiesPerClient: "MAAS_MAX_BODIES_PER_CLIENT",
  /** On SIGTERM, how long `serve` waits for accepted requests to finish before it exits anyway. */
  drainTimeoutMs: "MAAS_DRAIN_TIMEOUT_MS",
  /**
   * On SIGTERM, `serve` first reports not ready and keeps serving for this many milliseconds (while
   * Kubernetes takes the pod out of its Service's endpoints), then drains. Unset: 0.
   */
  shutdownDelayMs: "MAAS_SHUTDOWN_DELAY_MS",
  /** The ModelDeployment's name and namespace, stamped on every metric as labels. */
  deploymentName: "MAAS_DEPLOYMENT",
  deploymentNamespace: "MAAS_NAMESPACE",
  /**
   * Where `fetch`, and `serve` when it exits on a load failure, write their one-line failure reason;
   * the kubelet reports it in pod status.
   */
  terminationMessagePath: "MAAS_TERMINATION_MESSAGE_PATH",
  /**
   * "true": `serve` exits 1 with the reason in its termination message when the model (or its
   * configuration) cannot be loaded, so the kubelet restarts it with back-off and the operator can
   * quote the reason. Unset or "false" (standalone use): it stays up, not ready, and reports the
   * reason in /v1 status and /v2 ready.
   */
  exitOnLoadFailure: "MAAS_EXIT_ON_LOAD_FAILURE",
  /** Credentials for s3/gs/https model stores, from the referenced Secret via secretKeyRef. */
  awsAccessKeyId: "AWS_ACCESS_KEY_ID",
  awsSecretAccessKey: "AWS_SECRET_ACCESS_KEY",
  awsRegion: "AWS_REGION",
  s3Endpoint: "AWS_ENDPOINT_URL_S3",
  httpAuthorization: "MAAS_HTTP_AUTHORIZATION",
  /** Optional STS session token for s3 (temporary credentials). */
  awsSessionToken: "AWS_SESSION_TOKEN",
  /** Where the operator mounts the claim of a `pvc://<claim>/<path>` URI (read-only) in the `fetch` container. */
  modelSourceDir: "MAAS_MODEL_SOURCE_DIR",
  /** Upper bound on the bytes `fetch` writes for one model (all files together). */
  fetchMaxBytes: "MAAS_FETCH_MAX_BYTES",
  /** `fetch` gives up on an attempt after this many milliseconds without a byte (connect included). */
  fetchTimeoutMs: "MAAS_FETCH_TIMEOUT_MS",
  /** Wall-clock limit for the whole `fetch`, retries included. */
  fetchDeadlineMs: "MAAS_FETCH_DEADLINE_MS",
  /** Retries per file after the first attempt, for 5xx/408/429 and network errors (never for other 4xx). */
  fetchRetries: "MAAS_FETCH_RETRIES",
  /** Base of the exponential backoff between retries, in milliseconds. */
  fetchBackoffMs: "MAAS_FETCH_BACKOFF_MS",
} as const;
export type EnvName = (typeof Env)[keyof typeof Env];

/** Keys read from the credentials Secret (`spec.model.credentialsSecretRef`), each optional. */
export const CredentialKeys = {
  awsAccessKeyId: "AWS_ACCESS_KEY_ID",
  awsSecretAccessKey: "AWS_SECRET_ACCESS_KEY",
  awsRegion: "AWS_REGION",
  s3Endpoint: "AWS_ENDPOINT_URL_S3",
  httpAuthorization: "HTTP_AUTHORIZATION",
  /** Temporary (STS) credentials: ASIA… keys only work together with their session token. */
  awsSessionToken: "AWS_SESSION_TOKEN",
} as const;

export const Ports = {
  http: 8080,
  metrics: 9090,
} as const;

export const PortNames = {
  http: "http",
  metrics: "metrics",
} as const;

export const Paths = {
  /** Mount point of the model volume in both containers. */
  modelDir: "/models",
  /** Writable scratch space (the root filesystem is read-only). */
  tmpDir: "/tmp",
  terminationMessage: "/dev/termination-log",
  /**
   * Default of MAAS_MODEL_DIR for both commands: a directory *inside* the model volume, never its mount point,
   * because `fetch` stages the model next to it and renames it into place (a mount point cannot be renamed).
   */
  fetchedModelDir: "/models/model",
  /** Default of MAAS_MODEL_SOURCE_DIR: where a `pvc://` claim is mounted read-only in the `fetch` container. */
  modelSourceDir: "/model-source",
} as const;

export const Probes = {
  /** Live as long as the process answers; never depends on the model. */
  live: "/v2/health/live",
  /** Ready only after the model loaded and warmed up, and not while draining. */
  ready: "/v2/health/ready",
  metrics: "/metrics",
} as const;

/** The two commands of the image: `maas-serving fetch` and `maas-serving serve`. */
export const Commands = {
  binary: "maas-serving",
  fetch: "fetch",
  serve: "serve",
} as const;

/** How each command's termination message starts, so the operator can tell them apart and quote them. */
export const TerminationPrefixes = {
  fetchFailed: "model fetch failed: ",
  loadFailed: "model load failed: ",
} as const;

export const ContainerNames = {
  fetch: "fetch",
  serve: "serve",
} as const;

/** Labels stamped on every metric, so PromQL does not depend on Prometheus relabeling. */
export const MetricLabels = {
  deployment: "maas_deployment",
  namespace: "maas_namespace",
  model: "model",
  protocol: "protocol",
  code: "code",
  backend: "backend",
  reason: "reason",
} as const;

export const Metrics = {
  requestsTotal: "maas_requests_total",
  requestDurationSeconds: "maas_request_duration_seconds",
  inflightRequests: "maas_inflight_requests",
  queueDepth: "maas_queue_depth",
  batchSize: "maas_batch_size",
  modelLoadSeconds: "maas_model_load_seconds",
  backendInfo: "maas_backend_info",
  /** 1 when the model is loaded, warmed up and the server is not draining; 0 otherwise. */
  modelReady: "maas_model_ready",
  /** Inference worker threads currently running the model. */
  inferenceWorkers: "maas_inference_workers",
  /** Inference workers replaced, by `reason`: `crashed`, `exited` or `hung` (a batch ran far past the request timeout). */
  inferenceWorkersReplaced: "maas_inference_workers_replaced_total",
} as const;

export const Backends = ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"] as const;
export type Backend = (typeof Backends)[number];

export const ModelFormats = ["tfjs-graph", "tfjs-layers", "tf-saved-model"] as const;
export type ModelFormat = (typeof ModelFormats)[number];

/** Defaults the image applies when the operator leaves a variable unset. */
export const Defaults = {
  maxBatchSize: 32,
  // 0: the worker pool already batches whatever queued while a batch ran; waiting on purpose cost
  // latency at low load and bought no throughput in bench:serving (see the README).
  maxBatchDelayMs: 0,
  maxQueue: 256,
  requestTimeoutMs: 30_000,
  /** Request bodies above this are refused with 413 before they are buffered. */
  maxBodyBytes: 64 * 1024 * 1024,
  bodyTimeoutMs: 30_000,
  bodyIdleTimeoutMs: 5_000,
  /** Longer than requestTimeoutMs, so every accepted request can finish or time out on its own. */
  drainTimeoutMs: 45_000,
  /** What the operator sets: long enough for endpoint removal to reach kube-proxy and ingresses. */
  shutdownDelayMs: 5_000,
  fetchMaxBytes: 4 * 1024 * 1024 * 1024,
  fetchTimeoutMs: 30_000,
  fetchDeadlineMs: 30 * 60_000,
  fetchRetries: 4,
  fetchBackoffMs: 500,
} as const;
