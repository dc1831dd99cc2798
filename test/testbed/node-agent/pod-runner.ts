/**
 * Runs one pod bound to the local node the way a kubelet would: init containers in order, then the
 * containers, with the pod's environment, directories for emptyDir, PVC and (image mode) projected
 * volumes, HTTP/TCP probes, restarts with back-off, and a pod status computed from all of that. Test
 * bed only.
 *
 * A container runs as a local process (commands.ts maps it to a program in this checkout, and a free
 * local port per container port is passed through the environment), or, in image mode, from its image
 * with podman on the host network, with the pod's security context and mounts (podman.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import type { V1Container, V1Pod, V1Probe, V1Volume } from "@kubernetes/client-node";
import {
  containerSecurity,
  imageUser,
  memoryLimitBytes,
  nonRootRefusal,
  removeContainer,
  RUN_LABEL,
  signalContainer,
  startContainer,
} from "../podman.ts";
import { commandKey, type LocalCommand } from "./commands.ts";

export interface RunnerContext {
  workDir: string;
  pvcDir: string;
  commands: Record<string, LocalCommand>;
  allocatePort(): Promise<number>;
  /** Reads the decoded data of a Secret or ConfigMap (for env and envFrom); undefined when absent. */
  readData(kind: "Secret" | "ConfigMap", namespace: string, name: string): Promise<Record<string, string> | undefined>;
  log(msg: string, fields?: Record<string, unknown>): void;
  /** Image mode: containers whose image is in the test bed's image storage run from it with podman. */
  images?: {
    /** Value of podman.ts's RUN_LABEL on every container started, so the test bed can remove leftovers. */
    runLabel: string;
    /** The API server as containers reach it on the host network (KUBERNETES_SERVICE_HOST/PORT). */
    apiServer: { host: string; port: string };
    /** A token for the pod's ServiceAccount, bound to the pod, as the kubelet gets one (TokenRequest). */
    requestToken(pod: V1Pod, expirationSeconds: number, audience: string | undefined): Promise<string>;
  };
}

/** Container state as the API serialises it (timestamps as RFC 3339 strings). */
interface ContainerState {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: { exitCode: number; reason: string; message?: string; startedAt?: string; finishedAt: string };
}

interface Run {
  container: V1Container;
  init: boolean;
  /** "image": podman runs the container's image; "local": a program of this checkout (commands.ts). */
  runtime: "local" | "image" | undefined;
  /** The image's USER, for the runAsNonRoot check (image runtime). */
  imageUser: string | undefined;
  /** The podman container of the current attempt (image runtime). */
  containerName: string | undefined;
  proc: ChildProcess | undefined;
  pid: number | undefined;
  ports: Map<number, number>;
  env: NodeJS.ProcessEnv;
  /** Why the kubelet cannot build the container's environment (a missing Secret or key), as it says it. */
  configError: string | undefined;
  logFile: string;
  terminationFile: string;
  restartCount: number;
  state: ContainerState;
  lastState?: ContainerState;
  started: boolean;
  ready: boolean;
  startupPassed: boolean;
  probeFailures: { liveness: number; readiness: number; startup: number };
  probeSuccesses: number;
  nextStart?: number;
  backoffMs: number;
  stopping: boolean;
}

const now = () => new Date().toISOString();
const terminationMessagePath = (c: V1Container) => c.terminationMessagePath ?? "/dev/termination-log";
const maxBackoffMs = 60_000;

export class PodRunner {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  private pod: V1Pod;
  private readonly ctx: RunnerContext;
  private readonly dir: string;
  private readonly runs: Run[] = [];
  private readonly volumes = new Map<string, string>();
  private initIndex = 0;
  private terminating = false;
  private failedPermanently = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly startTime = now();
  private readyTransition = now();
  private lastReady = false;

  constructor(pod: V1Pod, ctx: RunnerContext) {
    this.pod = pod;
    this.ctx = ctx;
    this.uid = pod.metadata!.uid!;
    this.namespace = pod.metadata!.namespace!;
    this.name = pod.metadata!.name!;
    this.dir = join(ctx.workDir, "pods", `${this.namespace}_${this.name}_${this.uid.slice(0, 8)}`);
  }

  update(pod: V1Pod): void {
    this.pod = pod;
  }

  /** Prepares volumes, ports and environments, then starts ticking. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    for (const v of this.pod.spec?.volumes ?? []) {
      let path: string | undefined;
      if (v.emptyDir) path = join(this.dir, "volumes", v.name);
      else if (v.persistentVolumeClaim) path = join(this.ctx.pvcDir, this.namespace, v.persistentVolumeClaim.claimName);
      else if (v.projected && this.ctx.images) path = join(this.dir, "volumes", v.name);
      if (path) {
        mkdirSync(path, { recursive: true });
        // As the kubelet makes them: an emptyDir is writable by whichever user the containers run as.
        if (v.emptyDir) chmodSync(path, 0o777);
        if (v.projected) await this.project(v, path);
        this.volumes.set(v.name, path);
      }
    }
    const containers = [
      ...(this.pod.spec?.initContainers ?? []).map((c) => ({ c, init: true })),
      ...(this.pod.spec?.containers ?? []).map((c) => ({ c, init: false })),
    ];
    for (const { c, init } of containers) {
      const ports = new Map<number, number>();
      // A program told its port through the environment gets a free one; in image mode any other container
      // binds its container port itself, on the host network (as a hostNetwork pod does).
      const portEnv = this.ctx.commands[commandKey(c)]?.portEnv ?? {};
      for (const p of c.ports ?? []) {
        const fixed = this.ctx.images && portEnv[p.containerPort] === undefined;
        ports.set(p.containerPort, fixed ? p.containerPort : await this.ctx.allocatePort());
      }
      const terminationFile = join(this.dir, `${c.name}.termination-log`);
      this.runs.push({
        container: c,
        init,
        runtime: undefined,
        imageUser: undefined,
        containerName: undefined,
        proc: undefined,
        pid: undefined,
        ports,
        env: {},
        configError: undefined,
        logFile: join(this.dir, `${c.name}.log`),
        terminationFile,
        restartCount: 0,
        state: { waiting: { reason: init ? "PodInitializing" : "ContainerCreating" } },
        started: false,
        ready: false,
        startupPassed: false,
        probeFailures: { liveness: 0, readiness: 0, startup: 0 },
        probeSuccesses: 0,
        backoffMs: 10_000,
        stopping: false,
      });
    }
    for (const r of this.runs) await this.prepare(r);
    this.timer = setInterval(() => {
      void this.tick();
    }, 250);
    void this.tick();
  }

  /** Container port → local port, for every container (published for tests). */
  portMap(): Map<number, number> {
    const m = new Map<number, number>();
    for (const r of this.runs) for (const [cp, lp] of r.ports) m.set(cp, lp);
    return m;
  }

  /** Local scrape targets for Prometheus, from the conventional prometheus.io annotations. */
  scrapeTarget(): { target: string; path: string } | undefined {
    const ann = this.pod.metadata?.annotations ?? {};
    if (ann["prometheus.io/scrape"] !== "true") return undefined;
    const port = Number(ann["prometheus.io/port"] ?? "0");
    const local = this.portMap().get(port);
    const serving = this.runs.find((r) => !r.init && r.ports.has(port));
    if (!local || !serving?.state.running) return undefined;
    return { target: `127.0.0.1:${local}`, path: ann["prometheus.io/path"] ?? "/metrics" };
  }

  /**
   * Builds the container's environment, or records why it cannot be built: like a kubelet, a
   * non-optional reference to a missing Secret, ConfigMap or key is CreateContainerConfigError,
   * tried again until it resolves.
   */
  private async prepare(r: Run): Promise<void> {
    const problems: string[] = [];
    r.runtime ??= await this.runtimeFor(r);
    if (r.runtime === "image") {
      const refusal = nonRootRefusal(containerSecurity(this.pod.spec?.securityContext, r.container), r.imageUser!);
      if (refusal)
        problems.push(
          `${refusal} (pod: "${this.name}_${this.namespace}(${this.uid})", container: ${r.container.name})`,
        );
    }
    r.env = await this.environment(r, problems);
    r.configError = problems[0];
    if (r.configError) r.state = { waiting: { reason: "CreateContainerConfigError", message: r.configError } };
  }

  /**
   * In image mode a container whose image is in the test bed's image storage runs from it; a test fixture
   * without an image runs locally. Undefined: nothing can run it (the pull error is set).
   */
  private async runtimeFor(r: Run): Promise<Run["runtime"]> {
    const local = this.ctx.commands[commandKey(r.container)];
    if (!this.ctx.images) return "local";
    const image = r.container.image ?? "";
    r.imageUser = await imageUser(image);
    if (r.imageUser !== undefined) return "image";
    if (local && !local.fromImage) return "local";
    r.state = {
      waiting: {
        reason: "ErrImagePull",
        message: `node agent: image "${image}" is not in the test bed's image storage (npm run images)`,
      },
    };
    return undefined;
  }

  /** Writes a projected volume (the ServiceAccount token, kube-root-ca.crt, the namespace) as the kubelet does. */
  private async project(v: V1Volume, dir: string): Promise<void> {
    const files: Record<string, string> = {};
    for (const source of v.projected?.sources ?? []) {
      const token = source.serviceAccountToken;
      if (token) {
        files[token.path] = await this.ctx.images!.requestToken(
          this.pod,
          token.expirationSeconds ?? 3600,
          token.audience,
        );
      }
      for (const [kind, ref] of [
        ["ConfigMap", source.configMap],
        ["Secret", source.secret],
      ] as const) {
        if (!ref?.name) continue;
        const data = (await this.ctx.readData(kind, this.namespace, ref.name)) ?? {};
        for (const item of ref.items ?? Object.keys(data).map((key) => ({ key, path: key }))) {
          const value = data[item.key];
          if (value !== undefined) files[item.path] = value;
        }
      }
      for (const item of source.downwardAPI?.items ?? []) {
        const value = item.fieldRef ? this.field(item.fieldRef.fieldPath) : undefined;
        if (value !== undefined) files[item.path] = value;
      }
    }
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content, { mode: 0o644 });
    }
  }

  /** A downward-API field of this pod, as env `fieldRef`s and projected volumes read it. */
  private field(path: string): string | undefined {
    const meta = this.pod.metadata!;
    const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
    if (label) return meta.labels?.[label[1]!];
    const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(path);
    if (annotation) return meta.annotations?.[annotation[1]!];
    const fields: Record<string, string | undefined> = {
      "metadata.name": meta.name,
      "metadata.namespace": meta.namespace,
      "metadata.uid": meta.uid,
      "spec.nodeName": this.pod.spec?.nodeName,
      "spec.serviceAccountName": this.pod.spec?.serviceAccountName,
      "status.podIP": "127.0.0.1",
      "status.hostIP": "127.0.0.1",
    };
    return fields[path];
  }

  private async environment(r: Run, problems: string[]): Promise<NodeJS.ProcessEnv> {
    // A container from an image gets the pod's environment and what every kubelet adds; a local process
    // also needs this machine's PATH and a home and temporary directory of its own.
    const apiServer = this.ctx.images?.apiServer;
    const env: NodeJS.ProcessEnv =
      r.runtime === "image" && apiServer
        ? { KUBERNETES_SERVICE_HOST: apiServer.host, KUBERNETES_SERVICE_PORT: apiServer.port }
        : { PATH: process.env.PATH, HOME: this.dir, TMPDIR: join(this.dir, "tmp") };
    if (r.runtime !== "image") mkdirSync(join(this.dir, "tmp"), { recursive: true });
    const field = (path: string) => this.field(path);
    // The kubelet's own words for a reference it cannot resolve.
    const lookup = async (
      kind: "Secret" | "ConfigMap",
      name: string,
      key: string | undefined,
      optional: boolean | undefined,
    ) => {
      const data = await this.ctx.readData(kind, this.namespace, name);
      if (!data) {
        if (!optional) problems.push(`${kind.toLowerCase()} "${name}" not found`);
        return undefined;
      }
      if (key === undefined) return data;
      if (data[key] === undefined && !optional) {
        problems.push(`couldn't find key ${key} in ${kind} ${this.namespace}/${name}`);
      }
      return data[key] === undefined ? undefined : { [key]: data[key] };
    };
    for (const from of r.container.envFrom ?? []) {
      const kind = from.secretRef ? "Secret" : "ConfigMap";
      const ref = from.secretRef ?? from.configMapRef;
      if (!ref?.name) continue;
      const data = (await lookup(kind, ref.name, undefined, ref.optional)) ?? {};
      for (const [key, v] of Object.entries(data)) env[(from.prefix ?? "") + key] = v;
    }
    for (const e of r.container.env ?? []) {
      const secret = e.valueFrom?.secretKeyRef;
      const configMap = e.valueFrom?.configMapKeyRef;
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.fieldRef) env[e.name] = field(e.valueFrom.fieldRef.fieldPath);
      else if (secret?.name) {
        const v = (await lookup("Secret", secret.name, secret.key, secret.optional))?.[secret.key];
        if (v !== undefined) env[e.name] = v;
      } else if (configMap?.name) {
        const v = (await lookup("ConfigMap", configMap.name, configMap.key, configMap.optional))?.[configMap.key];
        if (v !== undefined) env[e.name] = v;
      }
    }
    // For a local process, paths inside the container become local paths: volume mounts and the
    // termination-message file (a container sees them mounted where the pod says).
    const mounts = this.mounts(r);
    const terminationPath = terminationMessagePath(r.container);
    const key = commandKey(r.container);
    const portEnv = this.ctx.commands[key]?.portEnv ?? {};
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined || r.runtime === "image") continue;
      if (value === terminationPath) {
        env[name] = r.terminationFile;
        continue;
      }
      const mount = mounts.find((m) => value === m.at || value.startsWith(m.at.endsWith("/") ? m.at : m.at + "/"));
      if (mount) env[name] = mount.local + value.slice(mount.at.length);
    }
    for (const [containerPort, local] of r.ports) {
      const name = portEnv[containerPort];
      if (name) env[name] = String(local);
    }
    return env;
  }

  /** The container's volume mounts with the local directory of each, longest mount path first. */
  private mounts(r: Run): { at: string; local: string; readOnly: boolean }[] {
    return (r.container.volumeMounts ?? [])
      .map((m) => ({ at: m.mountPath, local: this.volumes.get(m.name), readOnly: m.readOnly ?? false }))
      .filter((m): m is { at: string; local: string; readOnly: boolean } => m.local !== undefined)
      .sort((a, b) => b.at.length - a.at.length);
  }

  private restartPolicy(): string {
    return this.pod.spec?.restartPolicy ?? "Always";
  }

  private async tick(): Promise<void> {
    if (this.terminating || this.failedPermanently) return;
    const inits = this.runs.filter((r) => r.init);
    const mains = this.runs.filter((r) => !r.init);
    if (this.initIndex < inits.length) {
      const r = inits[this.initIndex]!;
      if (!r.proc && !r.state.terminated?.exitCode && (r.nextStart ?? 0) <= Date.now())
        await this.launchWhenConfigured(r);
      return;
    }
    for (const r of mains) {
      if (!r.proc && (r.nextStart ?? 0) <= Date.now() && !(r.state.terminated && this.restartPolicy() === "Never")) {
        await this.launchWhenConfigured(r);
      }
    }
    await Promise.all(mains.filter((r) => r.proc && !r.stopping).map((r) => this.probe(r)));
  }

  /** Launches `r`, or, while its environment cannot be built, looks again every 2 s (as a kubelet retries). */
  private async launchWhenConfigured(r: Run): Promise<void> {
    if (r.configError !== undefined) {
      // Ticks overlap (one every 250 ms): the first to look again holds the others off meanwhile.
      r.nextStart = Date.now() + 2_000;
      await this.prepare(r);
      if (r.configError !== undefined || r.proc || this.terminating) return;
    }
    this.launch(r);
  }

  private launch(r: Run): void {
    if (r.runtime === undefined) return;
    const key = commandKey(r.container);
    const cmd = this.ctx.commands[key];
    if (r.runtime === "local" && !cmd) {
      r.state = {
        waiting: {
          reason: "ErrImagePull",
          message: `node agent: no local command for "${key}" (test/testbed/node-agent/commands.ts)`,
        },
      };
      return;
    }
    writeFileSync(r.terminationFile, "");
    let child: ChildProcess;
    if (r.runtime === "image") {
      // Writable by the container's user, mounted where the pod says the kubelet reads the message from.
      chmodSync(r.terminationFile, 0o666);
      r.containerName = `k8s_${r.container.name}_${this.name}_${this.namespace}_${this.uid.slice(0, 8)}_${r.restartCount}`;
      const labels = { [RUN_LABEL]: this.ctx.images!.runLabel };
      const mounts = [
        ...this.mounts(r).map((m) => ({ host: m.local, container: m.at, readOnly: m.readOnly })),
        { host: r.terminationFile, container: terminationMessagePath(r.container), readOnly: false },
      ];
      child = startContainer(
        {
          name: r.containerName,
          image: r.container.image!,
          command: r.container.command,
          args: r.container.args,
          env: Object.fromEntries(Object.entries(r.env).filter((e): e is [string, string] => e[1] !== undefined)),
          mounts,
          security: containerSecurity(this.pod.spec?.securityContext, r.container),
          memoryBytes: memoryLimitBytes(r.container),
          labels,
        },
        r.logFile,
      );
    } else {
      const argv = cmd!.argv;
      const args = [...argv.slice(1), ...(r.container.command?.slice(1) ?? []), ...(r.container.args ?? [])];
      const fd = openSync(r.logFile, "a");
      child = spawn(argv[0]!, args, { cwd: this.dir, env: r.env, stdio: ["ignore", fd, fd], detached: true });
      closeSync(fd);
    }
    r.proc = child;
    r.pid = child.pid;
    r.started = true;
    r.ready = false;
    r.startupPassed = !r.container.startupProbe;
    r.probeFailures = { liveness: 0, readiness: 0, startup: 0 };
    r.probeSuccesses = 0;
    r.state = { running: { startedAt: now() } };
    this.ctx.log("Started container", {
      pod: `${this.namespace}/${this.name}`,
      container: r.container.name,
      pid: child.pid,
      ...(r.containerName ? { image: r.container.image, podman: r.containerName } : {}),
    });
    const name = r.containerName;
    child.on("exit", (code, signal) => {
      // `podman run` exits with its container's code; should it have died first, its container goes too.
      if (name) void removeContainer(name);
      this.exited(r, code ?? 128 + (signal ? constants.signals[signal] : 0), signal);
    });
    child.on("error", (err) => {
      r.state = { waiting: { reason: "RunContainerError", message: err.message } };
      r.proc = undefined;
    });
  }

  private exited(r: Run, exitCode: number, signal: NodeJS.Signals | null): void {
    const startedAt = r.state.running?.startedAt;
    r.proc = undefined;
    r.ready = false;
    let message = existsSync(r.terminationFile) ? readFileSync(r.terminationFile, "utf8").slice(0, 4096) : "";
    if (!message && exitCode !== 0 && r.container.terminationMessagePolicy === "FallbackToLogsOnError") {
      message = readFileSync(r.logFile, "utf8").split("\n").slice(-80).join("\n").slice(-2048);
    }
    const terminated: ContainerState = {
      terminated: {
        exitCode,
        reason: exitCode === 0 ? "Completed" : signal === "SIGKILL" ? "Killed" : "Error",
        ...(message ? { message } : {}),
        ...(startedAt ? { startedAt } : {}),
        finishedAt: now(),
      },
    };
    this.ctx.log("Container exited", { pod: `${this.namespace}/${this.name}`, container: r.container.name, exitCode });
    if (this.terminating) {
      r.state = terminated;
      return;
    }
    if (r.init && exitCode === 0) {
      r.state = terminated;
      this.initIndex++;
    } else if (exitCode !== 0 && this.restartPolicy() === "Never") {
      r.state = terminated;
      if (r.init) this.failedPermanently = true;
    } else if (exitCode === 0 && this.restartPolicy() !== "Always") {
      r.state = terminated;
    } else {
      r.lastState = terminated;
      r.restartCount++;
      r.nextStart = Date.now() + r.backoffMs;
      r.state = {
        waiting: {
          reason: "CrashLoopBackOff",
          message: `back-off ${Math.round(r.backoffMs / 1000)}s restarting failed container=${r.container.name} pod=${this.name}_${this.namespace}(${this.uid})`,
        },
      };
      r.backoffMs = Math.min(r.backoffMs * 2, maxBackoffMs);
    }
  }

  private async probe(r: Run): Promise<void> {
    const c = r.container;
    if (!r.startupPassed && c.startupProbe) {
      const ok = await this.check(c.startupProbe, r);
      if (ok) {
        r.startupPassed = true;
      } else if (++r.probeFailures.startup >= (c.startupProbe.failureThreshold ?? 3) * this.probeRate(c.startupProbe)) {
        this.ctx.log("Startup probe failed; restarting", { pod: this.name, container: c.name });
        this.kill(r, "SIGKILL");
      }
      return;
    }
    if (c.livenessProbe && this.due(c.livenessProbe, r)) {
      if (await this.check(c.livenessProbe, r)) r.probeFailures.liveness = 0;
      else if (++r.probeFailures.liveness >= (c.livenessProbe.failureThreshold ?? 3)) {
        this.ctx.log("Liveness probe failed; restarting", { pod: this.name, container: c.name });
        this.kill(r, "SIGTERM");
        return;
      }
    }
    if (!c.readinessProbe) r.ready = true;
    else if (this.due(c.readinessProbe, r)) {
      if (await this.check(c.readinessProbe, r)) {
        r.probeFailures.readiness = 0;
        if (++r.probeSuccesses >= (c.readinessProbe.successThreshold ?? 1)) r.ready = true;
      } else {
        r.probeSuccesses = 0;
        if (++r.probeFailures.readiness >= (c.readinessProbe.failureThreshold ?? 3) || !r.ready) r.ready = false;
      }
    }
  }

  /** A probe is due once its initial delay passed and min(periodSeconds, 1 s) since its last run: faster than a kubelet, to keep tests quick. */
  private due(p: V1Probe, r: Run): boolean {
    const started = Date.parse(r.state.running?.startedAt ?? now());
    if (Date.now() - started < (p.initialDelaySeconds ?? 0) * 1000) return false;
    const period = (p.periodSeconds ?? 10) * 1000;
    const key = `${r.container.name}:${JSON.stringify(p)}`;
    const last = this.lastProbe.get(key) ?? 0;
    if (Date.now() - last < Math.min(period, 1000)) return false;
    this.lastProbe.set(key, Date.now());
    return true;
  }
  private readonly lastProbe = new Map<string, number>();

  private probeRate(p: V1Probe): number {
    // Startup probes are checked every tick; scale the threshold so the budget matches period × threshold.
    return Math.max(1, Math.round(((p.periodSeconds ?? 10) * 1000) / 250));
  }

  private resolvePort(port: number | string | undefined, r: Run): number | undefined {
    if (port === undefined) return undefined;
    const n = typeof port === "number" ? port : (r.container.ports ?? []).find((p) => p.name === port)?.containerPort;
    return n === undefined ? undefined : r.ports.get(n);
  }

  private check(p: V1Probe, r: Run): Promise<boolean> {
    const timeout = (p.timeoutSeconds ?? 1) * 1000;
    if (p.httpGet) {
      const port = this.resolvePort(p.httpGet.port, r);
      if (!port) return Promise.resolve(false);
      return new Promise((resolve) => {
        const req = request({ host: "127.0.0.1", port, path: p.httpGet!.path ?? "/", timeout }, (res) => {
          res.resume();
          const s = res.statusCode ?? 0;
          resolve(s >= 200 && s < 400);
        });
        req.on("error", () => {
          resolve(false);
        });
        req.on("timeout", () => req.destroy());
        req.end();
      });
    }
    if (p.tcpSocket) {
      const port = this.resolvePort(p.tcpSocket.port, r);
      if (!port) return Promise.resolve(false);
      return new Promise((resolve) => {
        const s = connect({ host: "127.0.0.1", port, timeout }, () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => {
          resolve(false);
        });
        s.on("timeout", () => {
          s.destroy();
          resolve(false);
        });
      });
    }
    return Promise.resolve(true);
  }

  private kill(r: Run, sig: NodeJS.Signals): void {
    const pid = r.pid;
    if (!pid) return;
    const signalProcess = () => {
      try {
        process.kill(-pid, sig);
      } catch {
        /* gone */
      }
    };
    // A container is signalled by name (`podman run` forwards SIGTERM, but a SIGKILL of it would leave the
    // container running); before its container exists, `podman run` itself is signalled.
    if (r.containerName && r.proc) {
      void signalContainer(r.containerName, sig).then((delivered) => {
        if (!delivered) signalProcess();
      });
    } else signalProcess();
  }

  /** SIGTERM to every process, SIGKILL after the grace period; resolves when all are gone. */
  async terminate(graceSeconds: number): Promise<void> {
    this.terminating = true;
    if (this.timer) clearInterval(this.timer);
    const live = this.runs.filter((r) => r.proc);
    for (const r of live) {
      r.stopping = true;
      this.kill(r, "SIGTERM");
    }
    const deadline = Date.now() + graceSeconds * 1000;
    while (this.runs.some((r) => r.proc) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    for (const r of this.runs.filter((x) => x.proc)) this.kill(r, "SIGKILL");
    while (this.runs.some((r) => r.proc)) await new Promise((res) => setTimeout(res, 20));
  }

  get isTerminating(): boolean {
    return this.terminating;
  }

  /** The pod status a kubelet would report for what this runner observed. */
  status(): Record<string, unknown> {
    const inits = this.runs.filter((r) => r.init);
    const mains = this.runs.filter((r) => !r.init);
    const initialized = this.initIndex >= inits.length;
    const containersReady = initialized && mains.every((r) => r.ready && r.state.running);
    if (containersReady !== this.lastReady) {
      this.lastReady = containersReady;
      this.readyTransition = now();
    }
    const toStatus = (r: Run) => ({
      name: r.container.name,
      image: r.container.image ?? "",
      imageID: "",
      containerID: r.containerName ? `podman://${r.containerName}` : r.pid ? `testbed://${r.pid}` : "",
      ready: r.init
        ? Boolean(r.state.terminated && r.state.terminated.exitCode === 0)
        : r.ready && Boolean(r.state.running),
      started: r.init ? false : Boolean(r.state.running) && r.startupPassed,
      restartCount: r.restartCount,
      state: r.state,
      ...(r.lastState ? { lastState: r.lastState } : {}),
    });
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({
      type,
      status: ok ? "True" : "False",
      lastTransitionTime: type === "Ready" || type === "ContainersReady" ? this.readyTransition : this.startTime,
      ...(ok || !reason ? {} : { reason }),
      ...(ok || !message ? {} : { message }),
    });
    const notReady = mains.filter((r) => !(r.ready && r.state.running)).map((r) => r.container.name);
    let phase = "Pending";
    if (this.failedPermanently) phase = "Failed";
    else if (initialized && mains.some((r) => r.state.running)) phase = "Running";
    else if (initialized && mains.length > 0 && mains.every((r) => r.state.terminated)) {
      phase = mains.every((r) => r.state.terminated?.exitCode === 0) ? "Succeeded" : "Failed";
    } else if (initialized && mains.some((r) => r.started)) phase = "Running";
    return {
      phase,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: this.startTime,
      qosClass: this.pod.status?.qosClass ?? "BestEffort",
      conditions: [
        cond("PodReadyToStartContainers", true),
        cond(
          "Initialized",
          initialized,
          "ContainersNotInitialized",
          `containers with incomplete status: [${inits
            .slice(this.initIndex)
            .map((r) => r.container.name)
            .join(" ")}]`,
        ),
        cond(
          "ContainersReady",
          containersReady,
          "ContainersNotReady",
          `containers with unready status: [${notReady.join(" ")}]`,
        ),
        cond("Ready", containersReady, "ContainersNotReady", `containers with unready status: [${notReady.join(" ")}]`),
        cond("PodScheduled", true),
      ],
      ...(inits.length ? { initContainerStatuses: inits.map(toStatus) } : {}),
      containerStatuses: mains.map(toStatus),
    };
  }
}
