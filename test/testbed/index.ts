/**
 * The test bed as tests see it: `useTestbed(mode)` starts the real control plane once per test
 * run (upgrading an "api" bed to "full" on demand) and returns clients and helpers. The mocha root
 * hook (mocha-hooks.ts) stops it after the last suite.
 */
import { loadKubeconfig, type ClusterAccess } from "../../operator/src/controller/kubeconfig.ts";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { Cluster, extraTargetsFile, type Mode } from "./cluster.ts";
import type { ImageRefs } from "./images.ts";
import { makeClients, type Clients } from "./clients.ts";
import { startKeda, type Keda } from "./keda.ts";
import { writeKubeconfig, type Pki } from "./pki.ts";
import { waitUntil } from "./proc.ts";

export interface AuditEvent {
  verb: string;
  user: { username: string; groups?: string[] };
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  /** Path and query, e.g. with the field manager of an apply. */
  requestURI?: string;
  userAgent?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Testbed extends Clients {
  /** Path of the admin kubeconfig (system:masters). */
  kubeconfig: string;
  kc: KubeConfig;
  /** The same connection as the operator reads it (its own kubeconfig loader). */
  access: ClusterAccess;
  mode: Mode;
  runDir: string;
  binDir: string;
  /** The test bed's CA and the API server's serving certificate (valid for 127.0.0.1: usable by loopback webhooks too). */
  pki: Pki;
  prometheusUrl: string | undefined;
  /** Image mode (MAAS_TESTBED_IMAGES=1): the images the node agent and the operators run; else undefined. */
  images: ImageRefs | undefined;
  /** Runs the test bed's kubectl; a non-zero exit is returned, not thrown. */
  kubectl(args: string[], opts?: { input?: string; kubeconfig?: string }): Promise<ExecResult>;
  helm(args: string[], opts?: { kubeconfig?: string }): Promise<ExecResult>;
  /** Creates a namespace with a unique name (deleted when the test bed stops with it). */
  createNamespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs?: number): Promise<T>;
  /** Writes made through the API server (reads are not audited), oldest first. */
  auditEvents(filter?: { user?: string; verbs?: string[]; since?: Date }): Promise<AuditEvent[]>;
  /** A kubeconfig whose client certificate says `user` in `groups`: RBAC applies to it for real. */
  kubeconfigForUser(user: string, groups?: string[]): Promise<string>;
  /** The local port the node agent gave a pod's container port. */
  podPort(namespace: string, pod: string, containerPort: number): number | undefined;
  /** Directory standing in for a PersistentVolumeClaim on the local node. */
  pvcPath(namespace: string, claim: string): string;
  /** Stops Prometheus (an outage); `startPrometheus` brings it back at the same URL with its data. */
  stopPrometheus(): Promise<void>;
  startPrometheus(): Promise<void>;
  /** Starts KEDA (operator and metrics API server, built on first use) once per test bed run. */
  startKeda(): Promise<Keda>;
  /** Has Prometheus scrape `address` (host:port, /metrics) every second, its series keeping their own labels. */
  addScrapeTarget(address: string, labels: Record<string, string>): void;
}

// Kept on globalThis: mocha loads the root hook with require() and the test files with import(),
// which can give this module two instances; both must see (and stop) the one running test bed.
const shared = globalThis as typeof globalThis & {
  [key: symbol]:
    { current?: { cluster: Cluster; bed: Testbed } | undefined; starting?: Promise<Testbed> | undefined } | undefined;
};
const KEY = Symbol.for("maas.testbed");
const state = (shared[KEY] ??= {});

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

function makeTestbed(cluster: Cluster): Testbed {
  const s = cluster.state;
  const clients = makeClients(s.kubeconfig);
  let nsCounter = 0;
  let keda: Promise<Keda> | undefined;
  const bed: Testbed = {
    ...clients,
    kubeconfig: s.kubeconfig,
    access: loadKubeconfig(s.kubeconfig),
    get mode() {
      return cluster.state.mode;
    },
    runDir: s.runDir,
    binDir: s.binDir,
    pki: s.pki,
    images: s.images,
    get prometheusUrl() {
      return cluster.state.prometheusUrl;
    },
    kubectl(args, opts = {}) {
      const env = { ...process.env, KUBECONFIG: opts.kubeconfig ?? s.kubeconfig };
      return run(join(s.binDir, "kubectl"), args, env, opts.input);
    },
    helm(args, opts = {}) {
      const env = {
        ...process.env,
        KUBECONFIG: opts.kubeconfig ?? s.kubeconfig,
        HELM_CACHE_HOME: join(s.runDir, "helm"),
      };
      return run(join(s.binDir, "helm"), args, env);
    },
    async createNamespace(prefix, labels = {}) {
      const name = `${prefix}-${process.pid}-${++nsCounter}`.slice(0, 63);
      await clients.core.createNamespace({ body: { metadata: { name, labels } } });
      if (cluster.state.mode === "full") {
        await waitUntil(
          `ServiceAccount default in ${name}`,
          async () => (await clients.core.readNamespacedServiceAccount({ name: "default", namespace: name })).metadata,
          30_000,
        );
      }
      return name;
    },
    waitFor(what, fn, timeoutMs = 60_000) {
      return waitUntil(what, fn, timeoutMs);
    },
    auditEvents(filter = {}) {
      const events = existsSync(s.auditLog)
        ? readFileSync(s.auditLog, "utf8")
            .split("\n")
            .filter((l) => l.trim() !== "")
            .map((l) => JSON.parse(l) as AuditEvent)
        : [];
      return Promise.resolve(
        events.filter(
          (e) =>
            (!filter.user || e.user.username === filter.user) &&
            (!filter.verbs || filter.verbs.includes(e.verb)) &&
            (!filter.since || Date.parse(e.requestReceivedTimestamp) >= filter.since.getTime()),
        ),
      );
    },
    kubeconfigForUser(user, groups = []) {
      return Promise.resolve(writeKubeconfig(s.pki, s.server, user, groups));
    },
    podPort(namespace, pod, containerPort) {
      if (!existsSync(s.agentPortsFile)) return undefined;
      const ports = JSON.parse(readFileSync(s.agentPortsFile, "utf8")) as Record<string, number>;
      return ports[`${namespace}/${pod}/${containerPort}`];
    },
    pvcPath(namespace, claim) {
      return join(s.agentPvcDir, namespace, claim);
    },
    stopPrometheus() {
      return cluster.stopPrometheus();
    },
    startPrometheus() {
      return cluster.startPrometheus();
    },
    startKeda() {
      keda ??= startKeda(cluster, bed);
      return keda;
    },
    addScrapeTarget(address, labels) {
      const file = extraTargetsFile(s);
      const targets = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as unknown[]) : [];
      writeFileSync(file, JSON.stringify([...targets, { targets: [address], labels }]));
    },
  };
  return bed;
}

/**
 * Returns the shared test bed, starting it on first use. Asking for "full" after "api" adds the
 * controller-manager, scheduler, kwok and the node agent to the running API server; asking for
 * Prometheus starts it if it isn't running.
 */
export async function useTestbed(mode: Mode, opts: { prometheus?: boolean } = {}): Promise<Testbed> {
  while (state.starting) await state.starting.catch(() => undefined);
  const task = (async () => {
    if (!state.current) {
      const cluster = await Cluster.start({ mode, prometheus: opts.prometheus ?? false });
      state.current = { cluster, bed: makeTestbed(cluster) };
      return state.current.bed;
    }
    const c = state.current;
    if (mode === "full" && c.cluster.state.mode === "api") await c.cluster.startFull();
    if (opts.prometheus && !c.cluster.prometheusRunning) await c.cluster.startPrometheus();
    return c.bed;
  })();
  state.starting = task;
  try {
    return await task;
  } finally {
    state.starting = undefined;
  }
}

/** Stops the shared test bed, if one was started. */
export async function stopTestbed(): Promise<void> {
  const c = state.current;
  state.current = undefined;
  if (c) await c.cluster.stop();
}
