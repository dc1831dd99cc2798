/**
 * Runs the real operator against the test bed the way the chart deploys it: the CRD installed,
 * the operator's namespace, and an identity that has exactly the RBAC rules the code declares
 * (operator/src/rbac.ts) — never cluster admin, so a missing rule fails a test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CRD_NAME } from "../../operator/src/api/index.ts";
import { clusterRules, leaderElectionRules } from "../../operator/src/rbac.ts";
import type { ExecResult, Testbed } from "./index.ts";
import { repoRoot } from "./paths.ts";
import { freePort, logTail } from "./proc.ts";

export const OPERATOR_NAMESPACE = "maas-system";

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
      "--serving-image=maas-serving:test",
      "--log-level=debug",
      ...(opts.args ?? []),
    ],
    ...(opts.env ? { env: opts.env } : {}),
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
}

/** Runs operator/src/main.ts with exactly these flags on a free health port; resolves once /healthz answers. */
export async function spawnOperator(tb: Testbed, opts: SpawnOperatorOptions): Promise<OperatorProcess> {
  const healthPort = await freePort();
  const logFile = join(tb.runDir, "logs", `${opts.name}-${Date.now()}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, "operator", "src", "main.ts"),
      ...opts.args,
      `--kubeconfig=${opts.kubeconfig}`,
      `--health-port=${healthPort}`,
    ],
    { stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env } },
  );
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.on("exit", (code) => {
      resolve(code);
    });
  });
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
      if (alive) child.kill("SIGTERM");
      return exited;
    },
    async kill9() {
      if (alive) child.kill("SIGKILL");
      await exited;
    },
    logs: () => readFileSync(logFile, "utf8"),
  };
}
