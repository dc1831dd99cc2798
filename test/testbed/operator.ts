/**
 * Runs the real operator against the test bed the way the chart deploys it: the CRD installed,
 * the operator's namespace, and an identity that has exactly the RBAC rules the code declares
 * (operator/src/rbac.ts) — never cluster admin, so a missing rule fails a test. In image mode the
 * operator runs from its image, with the chart's security context, volumes and memory limit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig, type V1Deployment } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { CRD_NAME, GROUP, PLURAL, VERSION } from "../../operator/src/api/index.ts";
import { clusterRules, leaderElectionRules } from "../../operator/src/rbac.ts";
import type { ExecResult, Testbed } from "./index.ts";
import { repoRoot } from "./paths.ts";
import {
  containerSecurity,
  memoryLimitBytes,
  removeContainer,
  RUN_LABEL,
  signalContainer,
  startContainer,
} from "./podman.ts";
import { freePort, logTail } from "./proc.ts";

export const OPERATOR_NAMESPACE = "maas-system";

/** The --serving-image the test bed's operators get: the built image in image mode, else a name the node agent maps to the sources. */
export function servingImageFor(tb: Testbed): string {
  return tb.images?.serving ?? "maas-serving:test";
}

/**
 * Installs (or updates) the generated CRD with plain kubectl apply and waits until it is Established;
 * returns what kubectl apply said.
 */
export async function installCrd(tb: Testbed): Promise<ExecResult> {
  const file = join(repoRoot, "crds", "maas.dev_modeldeployments.yaml");
  const r = await tb.kubectl(["apply", "-f", file]);
  if (r.code !== 0) throw new Error(`kubectl apply of the CRD failed: ${r.stderr}`);
  // Polled through the API: `kubectl wait` right after a create can fail at once while the
  // CRD has no conditions yet.
  await tb.waitFor(`CRD ${CRD_NAME} Established`, async () => {
    const crd = await tb.apiextensions.readCustomResourceDefinition({ name: CRD_NAME });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
  // Established comes before the API server's watch cache for the new type is up; until then a list
  // answers 429 "storage is (re)initializing". Callers list and watch at once, so wait for it here.
  await tb.waitFor(`${PLURAL} to be listable`, async () => {
    await tb.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
    return true;
  });
  return r;
}

async function ensure(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!/AlreadyExists|409/.test(String(err))) throw err;
  }
}

/**
 * Creates the operator namespace and binds `user` to the declared rules: a ClusterRole for the
 * cluster-wide rules and a Role in the operator namespace for the leader election Lease.
 * Returns a kubeconfig for that user.
 */
export async function operatorIdentity(
  tb: Testbed,
  user = "system:serviceaccount:maas-system:maas-operator",
): Promise<string> {
  await ensure(() => tb.core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }));
  const base = user.replace(/[^a-z0-9-]/g, "-").slice(-40);
  await ensure(() =>
    tb.rbac.createClusterRole({
      body: { metadata: { name: "maas-operator" }, rules: clusterRules.map((r) => ({ ...r })) },
    }),
  );
  await ensure(() =>
    tb.rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `maas-operator-${base}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "maas-operator" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      },
    }),
  );
  await ensure(() =>
    tb.rbac.createNamespacedRole({
      namespace: OPERATOR_NAMESPACE,
      body: { metadata: { name: "maas-operator-leader-election" }, rules: leaderElectionRules.map((r) => ({ ...r })) },
    }),
  );
  await ensure(() =>
    tb.rbac.createNamespacedRoleBinding({
      namespace: OPERATOR_NAMESPACE,
      body: {
        metadata: { name: `maas-operator-leader-election-${base}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "maas-operator-leader-election" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      },
    }),
  );
  return tb.kubeconfigForUser(user);
}

export interface OperatorProcess {
  user: string;
  healthPort: number;
  logFile: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no lease release, no draining. */
  kill9(): Promise<void>;
  logs(): string;
}

export interface StartOperatorOptions {
  user?: string;
  /** Extra flags, e.g. lease timings. */
  args?: string[];
  name?: string;
  /** Extra environment, e.g. NODE_OPTIONS. */
  env?: NodeJS.ProcessEnv;
  /** Another checkout whose operator/src/main.ts runs instead of this one's (benchmarks' baselines; not in image mode). */
  root?: string;
}

/** Starts operator/src/main.ts as a child process with the declared RBAC and waits for /healthz. */
export async function startOperator(tb: Testbed, opts: StartOperatorOptions = {}): Promise<OperatorProcess> {
  const user = opts.user ?? "system:serviceaccount:maas-system:maas-operator";
  const kubeconfig = await operatorIdentity(tb, user);
  return spawnOperator(tb, {
    user,
    kubeconfig,
    name: opts.name ?? "operator",
    args: [
      `--leader-election-namespace=${OPERATOR_NAMESPACE}`,
      `--serving-image=${servingImageFor(tb)}`,
      "--log-level=debug",
      ...(opts.args ?? []),
    ],
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.root ? { root: opts.root } : {}),
  });
}

export interface SpawnOperatorOptions {
  /** Who the kubeconfig authenticates as (for audit-log queries). */
  user: string;
  kubeconfig: string;
  name: string;
  /** Every flag but --kubeconfig and --health-port. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** The checkout whose operator runs (default this one); source mode only. */
  root?: string;
}

/**
 * Runs operator/src/main.ts with exactly these flags on a free health port, from the sources or (image
 * mode) from the operator image; resolves once /healthz answers.
 */
export async function spawnOperator(tb: Testbed, opts: SpawnOperatorOptions): Promise<OperatorProcess> {
  const healthPort = await freePort();
  const stamp = `${opts.name}-${Date.now()}`;
  const logFile = join(tb.runDir, "logs", `${stamp}.log`);
  let child: ChildProcess;
  let container: string | undefined;
  if (tb.images) {
    if (opts.root) throw new Error(`the operator of ${opts.root} can run from its sources only, not in image mode`);
    container = `maas-tb-${stamp}`;
    child = await startOperatorContainer(tb, container, opts, healthPort, logFile);
  } else {
    const fd = openSync(logFile, "a");
    child = spawn(
      process.execPath,
      [
        join(opts.root ?? repoRoot, "operator", "src", "main.ts"),
        ...opts.args,
        `--kubeconfig=${opts.kubeconfig}`,
        `--health-port=${healthPort}`,
      ],
      { stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env } },
    );
    closeSync(fd);
  }
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      // `podman run` exits with the container's code; should it have died first, the container goes too.
      void (container ? removeContainer(container) : Promise.resolve()).then(() => {
        resolve(code);
      });
    });
  });
  // A container is signalled by name: a SIGKILL of `podman run` would leave the operator running.
  const signal = (sig: NodeJS.Signals) => {
    if (container) void signalContainer(container, sig);
    else child.kill(sig);
  };
  let alive = true;
  void exited.then(() => (alive = false));
  await tb.waitFor(
    "the operator's /healthz",
    async () => {
      if (!alive) throw new Error(`the operator exited; log:\n${logTail(logFile)}`);
      try {
        return (await fetch(`http://127.0.0.1:${healthPort}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    30_000,
  );
  return {
    user: opts.user,
    healthPort,
    logFile,
    child,
    exited,
    async stop() {
      if (alive) signal("SIGTERM");
      return exited;
    },
    async kill9() {
      if (alive) signal("SIGKILL");
      await exited;
    },
    logs: () => readFileSync(logFile, "utf8"),
  };
}

/** The chart's operator Deployment, rendered once per test bed (the container's security context and volumes). */
const chartDeployments = new Map<string, Promise<V1Deployment>>();

function chartDeployment(tb: Testbed): Promise<V1Deployment> {
  let rendered = chartDeployments.get(tb.runDir);
  if (!rendered) {
    rendered = tb.helm(["template", "maas-operator", join(repoRoot, "charts", "maas-operator")]).then((r) => {
      if (r.code !== 0) throw new Error(`helm template of the chart failed: ${r.stderr}`);
      const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind?: string } | null);
      const deployment = docs.find((d) => d?.kind === "Deployment");
      if (!deployment) throw new Error("the chart renders no Deployment");
      return deployment;
    });
    chartDeployments.set(tb.runDir, rendered);
  }
  return rendered;
}

/**
 * Starts the operator image as the chart's pod would run it: its security context (user, read-only root,
 * no capabilities), its emptyDir volumes and memory limit, the chart's literal environment, on the host
 * network. The kubeconfig goes in as a file readable by the container's user, its credentials inline.
 */
async function startOperatorContainer(
  tb: Testbed,
  name: string,
  opts: SpawnOperatorOptions,
  healthPort: number,
  logFile: string,
): Promise<ChildProcess> {
  const pod = (await chartDeployment(tb)).spec!.template.spec!;
  const c = pod.containers[0]!;
  const dir = join(tb.runDir, "operator-containers", name);
  const mounts: { host: string; container: string; readOnly: boolean }[] = [];
  for (const m of c.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === m.name);
    if (!volume?.emptyDir) throw new Error(`the chart mounts volume ${m.name}, which the test bed cannot provide`);
    const host = join(dir, "volumes", m.name);
    mkdirSync(host, { recursive: true });
    chmodSync(host, 0o777);
    mounts.push({ host, container: m.mountPath, readOnly: m.readOnly ?? false });
  }
  const kubeconfig = "/var/run/maas-testbed/kubeconfig";
  mounts.push({
    host: inlineKubeconfig(opts.kubeconfig, join(dir, "kubeconfig")),
    container: kubeconfig,
    readOnly: true,
  });
  const chartEnv = Object.fromEntries(
    (c.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
  return startContainer(
    {
      name,
      image: tb.images!.operator,
      args: [...opts.args, `--kubeconfig=${kubeconfig}`, `--health-port=${healthPort}`],
      env: { ...chartEnv, ...(opts.env as Record<string, string> | undefined) },
      mounts,
      security: containerSecurity(pod.securityContext, c),
      memoryBytes: memoryLimitBytes(c),
      labels: { [RUN_LABEL]: tb.runDir },
    },
    logFile,
  );
}

/** Writes `source`'s current context with its credentials inline (no paths to files the container lacks). */
function inlineKubeconfig(source: string, target: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(source);
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  const data = (inline: string | undefined, file: string | undefined) =>
    inline ?? (file ? readFileSync(file).toString("base64") : undefined);
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "testbed",
        cluster: { server: cluster.server, "certificate-authority-data": data(cluster.caData, cluster.caFile) },
      },
    ],
    users: [
      {
        name: "operator",
        user: {
          ...(user.token ? { token: user.token } : {}),
          ...(user.certFile || user.certData ? { "client-certificate-data": data(user.certData, user.certFile) } : {}),
          ...(user.keyFile || user.keyData ? { "client-key-data": data(user.keyData, user.keyFile) } : {}),
        },
      },
    ],
    contexts: [{ name: "testbed", context: { cluster: "testbed", user: "operator" } }],
    "current-context": "testbed",
  };
  mkdirSync(join(target, ".."), { recursive: true });
  // Readable by the container's user, as the kubelet makes a projected ServiceAccount token (0644).
  writeFileSync(target, JSON.stringify(config), { mode: 0o644 });
  return target;
}
