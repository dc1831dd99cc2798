/**
 * Starts and stops the test bed's real control plane as local processes: etcd and kube-apiserver
 * (mode "api"), plus kube-controller-manager, kube-scheduler, kwok with fake CPU and GPU nodes and
 * the local node agent (mode "full"), and optionally Prometheus. Everything a run starts is recorded
 * in `<runDir>/state.json`, so `testbed:down` ends exactly those processes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { ensureImages, imagesEnabled, type ImageRefs } from "./images.ts";
import { ensureBinaries, repoRoot, runsRoot, testbedDir } from "./paths.ts";
import { createPki, writeKubeconfig, type Pki } from "./pki.ts";
import { removeLabelledContainers } from "./podman.ts";
import { alive, freePort, startProcess, stopPid, waitUntil, type Proc } from "./proc.ts";
import { fakeNodes, localNodeName } from "./nodes.ts";

export type Mode = "api" | "full";

export interface ClusterState {
  runDir: string;
  binDir: string;
  server: string;
  kubeconfig: string;
  mode: Mode;
  auditLog: string;
  pki: Pki;
  prometheusUrl?: string;
  prometheusTargetsFile: string;
  /** Ports the node agent gave each pod's container ports: `${ns}/${pod}/${containerPort}` → local port. */
  agentPortsFile: string;
  /** Directory standing in for PersistentVolumeClaims on the local node: `<dir>/<ns>/<claim>`. */
  agentPvcDir: string;
  processes: { name: string; pid: number; logFile: string }[];
  /** Image mode: the images pods and operators run from (their containers carry RUN_LABEL=runDir). */
  images?: ImageRefs;
}

export interface StartOptions {
  mode: Mode;
  prometheus?: boolean;
  /** Leave the processes running after this process exits (testbed:up). */
  detached?: boolean;
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # Reads are not counted; node heartbeats are noise.
  - level: None
    verbs: ["get", "list", "watch"]
  - level: None
    namespaces: ["kube-node-lease"]
  - level: None
    users: ["testbed-kwok"]
  - level: Metadata
`;

function httpsGetOk(url: string, pki: Pki, clientCert: string, clientKey: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(clientCert),
        key: readFileSync(clientKey),
        timeout: 2000,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => {
          resolve(res.statusCode === 200 && body.trim() === "ok");
        });
      },
    );
    req.on("error", () => {
      resolve(false);
    });
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function httpGetOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => {
      resolve(false);
    });
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Runs kept in .testbed/ for their logs; older ones are removed unless a process of theirs still runs. */
const KEEP_RUNS = 8;

function pruneOldRuns(): void {
  if (!existsSync(runsRoot)) return;
  const runs = readdirSync(runsRoot)
    .filter((d) => d.startsWith("run-"))
    .sort();
  for (const run of runs.slice(0, Math.max(0, runs.length - KEEP_RUNS))) {
    const dir = join(runsRoot, run);
    try {
      const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as ClusterState;
      if (state.processes.some((p) => alive(p.pid))) continue;
    } catch {
      /* no state: nothing of it can be running */
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Prometheus file-SD targets that tests add (test bed index: addScrapeTarget). */
export function extraTargetsFile(state: ClusterState): string {
  return join(state.runDir, "prometheus", "extra-targets.json");
}

export class Cluster {
  readonly state: ClusterState;
  private readonly procs: Proc[] = [];
  private prometheus: Proc | undefined;
  private readonly stopHooks: (() => void)[] = [];
  private readonly detached: boolean;

  private constructor(state: ClusterState, detached: boolean) {
    this.state = state;
    this.detached = detached;
  }

  /** Starts etcd and the API server and waits for `/readyz`; then the full-mode parts if asked. */
  static async start(opts: StartOptions): Promise<Cluster> {
    const binDir = ensureBinaries();
    const images = imagesEnabled() ? await ensureImages() : undefined;
    pruneOldRuns();
    const started = Date.now();
    const runDir = join(runsRoot, `run-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}`);
    mkdirSync(join(runDir, "logs"), { recursive: true });
    const pki = createPki(join(runDir, "pki"));
    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const state: ClusterState = {
      runDir,
      binDir,
      server,
      kubeconfig: writeKubeconfig(pki, server, "admin", ["system:masters"]),
      mode: opts.mode,
      auditLog: join(runDir, "logs", "audit.log"),
      pki,
      prometheusTargetsFile: join(runDir, "prometheus", "targets.json"),
      agentPortsFile: join(runDir, "node-agent", "ports.json"),
      agentPvcDir: join(runDir, "node-agent", "pvcs"),
      processes: [],
      ...(images ? { images } : {}),
    };
    const cluster = new Cluster(state, opts.detached ?? false);
    try {
      await cluster.startApi(apiPort);
      if (opts.mode === "full") await cluster.startFull();
      if (opts.prometheus) await cluster.startPrometheus();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    process.stderr.write(
      `[testbed] ${opts.mode} mode ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${runDir})\n`,
    );
    return cluster;
  }

  private get logDir(): string {
    return join(this.state.runDir, "logs");
  }

  private bin(name: string): string {
    return join(this.state.binDir, name);
  }

  private track(p: Proc): Proc {
    this.procs.push(p);
    this.state.processes.push({ name: p.name, pid: p.pid, logFile: p.logFile });
    writeFileSync(join(this.state.runDir, "state.json"), JSON.stringify(this.state, null, 2));
    return p;
  }

  private run(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
    const opts = { logDir: this.logDir, detached: this.detached, ...(env ? { env } : {}) };
    return this.track(startProcess(name, cmd, args, opts));
  }

  /** Starts a process that belongs to this run (its log in logs/, stopped with the test bed). */
  runProcess(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Proc {
    return this.run(name, cmd, args, env);
  }

  /** Runs `fn` when the test bed stops, after its processes (to undo a change made for the run). */
  onStop(fn: () => void): void {
    this.stopHooks.push(fn);
  }

  private async startApi(apiPort: number): Promise<void> {
    const { runDir, pki } = this.state;
    const etcdPort = await freePort();
    const peerPort = await freePort();
    const etcd = this.run("etcd", this.bin("etcd"), [
      `--data-dir=${join(runDir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      "--unsafe-no-fsync=true",
      "--quota-backend-bytes=4294967296",
      "--log-level=warn",
    ]);
    await waitUntil("etcd /health", () => httpGetOk(`http://127.0.0.1:${etcdPort}/health`), 30_000, etcd);
    const policy = join(runDir, "audit-policy.yaml");
    writeFileSync(policy, auditPolicy);
    const apiserver = this.run("kube-apiserver", this.bin("kube-apiserver"), [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(runDir, "apiserver")}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      // A /16 leaves room for one Service per ModelDeployment in the 500-object benchmark.
      "--service-cluster-ip-range=10.0.0.0/16",
      "--authorization-mode=Node,RBAC",
      "--allow-privileged=true",
      // The aggregation layer (APIService), for API servers of peers such as KEDA's metrics server: the
      // front proxy's CA and client certificate; backends are reached at their endpoints (no kube-proxy).
      `--requestheader-client-ca-file=${pki.frontProxyCaCert}`,
      "--requestheader-allowed-names=front-proxy-client",
      "--requestheader-extra-headers-prefix=X-Remote-Extra-",
      "--requestheader-group-headers=X-Remote-Group",
      "--requestheader-username-headers=X-Remote-User",
      `--proxy-client-cert-file=${pki.frontProxyClientCert}`,
      `--proxy-client-key-file=${pki.frontProxyClientKey}`,
      "--enable-aggregator-routing=true",
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${this.state.auditLog}`,
      "--audit-log-maxsize=1024",
      "--max-requests-inflight=800",
      "--max-mutating-requests-inflight=400",
      "--v=1",
    ]);
    const admin = join(pki.dir, "user-admin-system_masters");
    await waitUntil(
      "kube-apiserver /readyz",
      () => httpsGetOk(`${this.state.server}/readyz`, pki, `${admin}.crt`, `${admin}.key`),
      90_000,
      apiserver,
    );
  }

  /** Adds the controller-manager, scheduler, kwok with fake nodes, and the local node agent. */
  async startFull(): Promise<void> {
    const { pki, server, runDir } = this.state;
    const cmKubeconfig = writeKubeconfig(pki, server, "system:kube-controller-manager");
    const cm = this.run("kube-controller-manager", this.bin("kube-controller-manager"), [
      `--kubeconfig=${cmKubeconfig}`,
      `--authentication-kubeconfig=${cmKubeconfig}`,
      `--authorization-kubeconfig=${cmKubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${await freePort()}`,
      `--cert-dir=${join(runDir, "controller-manager")}`,
      "--leader-elect=false",
      `--root-ca-file=${pki.caCert}`,
      `--service-account-private-key-file=${pki.saKey}`,
      "--use-service-account-credentials=true",
      "--cluster-cidr=10.244.0.0/16",
      "--concurrent-deployment-syncs=10",
      "--concurrent-replicaset-syncs=10",
      "--kube-api-qps=200",
      "--kube-api-burst=400",
      "--v=1",
    ]);
    const schedKubeconfig = writeKubeconfig(pki, server, "system:kube-scheduler");
    const sched = this.run("kube-scheduler", this.bin("kube-scheduler"), [
      `--kubeconfig=${schedKubeconfig}`,
      `--authentication-kubeconfig=${schedKubeconfig}`,
      `--authorization-kubeconfig=${schedKubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${await freePort()}`,
      "--leader-elect=false",
      "--v=1",
    ]);
    const kwokKubeconfig = writeKubeconfig(pki, server, "testbed-kwok", ["system:masters"]);
    const kwok = this.run("kwok", this.bin("kwok"), [
      `--kubeconfig=${kwokKubeconfig}`,
      "--manage-all-nodes=false",
      "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
      "--cidr=10.244.0.0/16",
      "--node-ip=10.99.0.1",
      "--node-lease-duration-seconds=40",
      `--server-address=127.0.0.1:${await freePort()}`,
    ]);
    const agentKubeconfig = writeKubeconfig(pki, server, "testbed-node-agent", ["system:masters"]);
    mkdirSync(join(runDir, "node-agent"), { recursive: true });
    mkdirSync(join(runDir, "prometheus"), { recursive: true });
    const agent = this.run("node-agent", process.execPath, [
      join(testbedDir, "node-agent", "main.ts"),
      `--kubeconfig=${agentKubeconfig}`,
      `--node-name=${localNodeName}`,
      `--work-dir=${join(runDir, "node-agent")}`,
      `--ports-file=${this.state.agentPortsFile}`,
      `--pvc-dir=${this.state.agentPvcDir}`,
      `--targets-file=${this.state.prometheusTargetsFile}`,
      `--repo-root=${repoRoot}`,
      ...(this.state.images ? [`--images-run-label=${runDir}`] : []),
    ]);
    const { makeClients } = await import("./clients.ts");
    const { core } = makeClients(this.state.kubeconfig);
    for (const node of fakeNodes()) {
      try {
        await core.createNode({ body: node });
      } catch (err) {
        if (!String(err).includes("409") && !String(err).includes("AlreadyExists")) throw err;
      }
    }
    const want = fakeNodes().length + 1;
    await waitUntil(
      `${want} Ready nodes`,
      async () => {
        for (const p of [cm, sched, kwok, agent]) {
          if (!p.isRunning()) throw new Error(`${p.name} exited`);
        }
        const nodes = await core.listNode();
        const ready = nodes.items.filter((n) =>
          n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        );
        return ready.length >= want;
      },
      90_000,
    );
    // The controller-manager creates each namespace's default ServiceAccount; pods wait for it.
    await waitUntil(
      "default ServiceAccount",
      async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: "default" })).metadata?.name,
      60_000,
      cm,
    );
    this.state.mode = "full";
    writeFileSync(join(runDir, "state.json"), JSON.stringify(this.state, null, 2));
  }

  /**
   * Starts Debian's Prometheus, scraping every second the targets the node agent publishes. After
   * `stopPrometheus` it starts again on the same port and data, as a restarted Prometheus would.
   */
  async startPrometheus(): Promise<void> {
    const dir = join(this.state.runDir, "prometheus");
    mkdirSync(dir, { recursive: true });
    if (!existsSync(this.state.prometheusTargetsFile)) writeFileSync(this.state.prometheusTargetsFile, "[]");
    if (!existsSync(extraTargetsFile(this.state))) writeFileSync(extraTargetsFile(this.state), "[]");
    const config = join(dir, "prometheus.yml");
    writeFileSync(
      config,
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: testbed-pods",
        "    scrape_timeout: 1s",
        "    file_sd_configs:",
        `      - files: [${JSON.stringify(this.state.prometheusTargetsFile)}]`,
        "        refresh_interval: 1s",
        // Targets a test adds (the operator under test): their series keep their own labels, as a
        // ServiceMonitor with honorLabels keeps the autoscaler's namespace and name.
        "  - job_name: testbed-extra",
        "    honor_labels: true",
        "    scrape_timeout: 1s",
        "    file_sd_configs:",
        `      - files: [${JSON.stringify(extraTargetsFile(this.state))}]`,
        "        refresh_interval: 1s",
        "",
      ].join("\n"),
    );
    const previous = this.state.prometheusUrl;
    const port = previous ? Number(new URL(previous).port) : await freePort();
    const prom = this.run("prometheus", "prometheus", [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--web.enable-lifecycle",
      "--log.level=warn",
    ]);
    const url = `http://127.0.0.1:${port}`;
    await waitUntil("prometheus /-/ready", () => httpGetOk(`${url}/-/ready`), 60_000, prom);
    this.prometheus = prom;
    this.state.prometheusUrl = url;
    writeFileSync(join(this.state.runDir, "state.json"), JSON.stringify(this.state, null, 2));
  }

  /** Stops Prometheus (an outage, for tests); its URL stays, and `startPrometheus` brings it back there. */
  async stopPrometheus(): Promise<void> {
    const prom = this.prometheus;
    this.prometheus = undefined;
    if (prom) await stopPid(prom.pid);
  }

  get prometheusRunning(): boolean {
    return this.prometheus?.isRunning() ?? false;
  }

  /** Stops every process this run started, newest first, and any container of it left behind. */
  async stop(): Promise<void> {
    await stopRecorded(this.state);
    for (const fn of this.stopHooks.splice(0)) fn();
  }
}

export async function stopRecorded(state: Pick<ClusterState, "processes" | "images" | "runDir">): Promise<void> {
  for (const p of [...state.processes].reverse()) {
    // The node agent needs time to stop its pods' processes; the rest stop within a second or two.
    await stopPid(p.pid, p.name === "node-agent" ? 20_000 : 10_000);
  }
  // Containers outlive a killed `podman run` (or a test that never stopped its operator).
  if (state.images) await removeLabelledContainers(state.runDir);
}
