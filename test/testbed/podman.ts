/**
 * Runs containers with podman the way a kubelet runs a pod's containers, for the test bed's image mode: on
 * the host network (every pod here shares the node's loopback, as the local processes do), with the pod's
 * security context (user, read-only root filesystem, capabilities, no privilege escalation), its volume
 * mounts mapped to directories, and the memory limit. Containers are stopped by name: a SIGKILL of the
 * `podman run` process would leave its container running.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { V1Container, V1PodSecurityContext } from "@kubernetes/client-node";
import { parseQuantity } from "../../operator/src/api/quantity.ts";

/** Label on every container the test bed starts, valued with its run directory, so a stop can clean up. */
export const RUN_LABEL = "dev.maas.testbed-run";

/** Container storage, configuration and the bases' downloads: the project's cache, never /etc/containers. */
export function imagesCacheRoot(): string {
  return process.env.MAAS_IMAGES_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "maas-images");
}

/**
 * The sandbox cannot raise hard limits (nofile 20000 here): podman's defaults would make runc fail with
 * "setrlimit RLIMIT_NOFILE: Operation not permitted", so containers get limits below it.
 */
const CONTAINER_ULIMITS = ["nofile=16384:16384", "nproc=16384:16384"];
const configDir = () => join(imagesCacheRoot(), "config");
/** podman's and buildah's run state: on /run, so it is gone after a reboot as podman expects. */
const runRoot = () =>
  join("/run", `maas-images-${createHash("sha256").update(imagesCacheRoot()).digest("hex").slice(0, 8)}`);

/** The environment that points podman and buildah at the project's private storage and configuration. */
export function containerEnv(): Record<string, string> {
  const dir = configDir();
  return {
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
  };
}

/** Writes the private configuration containerEnv() points at (podman and buildah read nothing else). */
export function writeContainerConfig(): void {
  mkdirSync(configDir(), { recursive: true });
  const env = containerEnv();
  const quote = (s: string) => JSON.stringify(s);
  writeFileSync(
    env.CONTAINERS_CONF!,
    [
      "# Written by test/testbed/podman.ts: the project's own podman/buildah configuration.",
      "[containers]",
      `default_ulimits = [${CONTAINER_ULIMITS.map(quote).join(", ")}]`,
      "[engine]",
      // crun 1.8 refuses this machine's hybrid cgroup layout; runc runs here.
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `tmp_dir = ${quote(join(runRoot(), "libpod"))}`,
      "",
    ].join("\n"),
  );
  writeFileSync(
    env.CONTAINERS_STORAGE_CONF!,
    [
      "[storage]",
      'driver = "overlay"',
      `graphroot = ${quote(join(imagesCacheRoot(), "storage"))}`,
      `runroot = ${quote(join(runRoot(), "storage"))}`,
      "",
    ].join("\n"),
  );
  writeFileSync(
    env.CONTAINERS_REGISTRIES_CONF!,
    [
      // Short names in FROM lines (node:24-bookworm) resolve to Docker Hub's names, which the bases carry.
      'unqualified-search-registries = ["docker.io"]',
      'short-name-mode = "permissive"',
      "",
    ].join("\n"),
  );
}

export interface ContainerRun {
  /** Unique among running containers; stops and removals address it. */
  name: string;
  image: string;
  /** Kubernetes `command`: replaces the image's ENTRYPOINT (and its CMD). */
  command?: readonly string[] | undefined;
  /** Kubernetes `args`: replace the image's CMD. */
  args?: readonly string[] | undefined;
  env: Record<string, string>;
  mounts: readonly { host: string; container: string; readOnly: boolean }[];
  security: ContainerSecurity;
  memoryBytes?: number | undefined;
  labels: Record<string, string>;
}

/** What the container's and the pod's security contexts ask of the runtime (the container's wins). */
export interface ContainerSecurity {
  user?: number | undefined;
  group?: number | undefined;
  supplementalGroups: number[];
  runAsNonRoot: boolean;
  readOnlyRootFilesystem: boolean;
  noNewPrivileges: boolean;
  capDrop: string[];
  capAdd: string[];
}

export function containerSecurity(pod: V1PodSecurityContext | undefined, c: V1Container): ContainerSecurity {
  const sc = c.securityContext;
  return {
    user: sc?.runAsUser ?? pod?.runAsUser,
    group: sc?.runAsGroup ?? pod?.runAsGroup,
    // The kubelet adds fsGroup and supplementalGroups to the container's groups.
    supplementalGroups: [...(pod?.fsGroup !== undefined ? [pod.fsGroup] : []), ...(pod?.supplementalGroups ?? [])],
    runAsNonRoot: sc?.runAsNonRoot ?? pod?.runAsNonRoot ?? false,
    readOnlyRootFilesystem: sc?.readOnlyRootFilesystem ?? false,
    noNewPrivileges: sc?.allowPrivilegeEscalation === false,
    capDrop: sc?.capabilities?.drop ?? [],
    capAdd: sc?.capabilities?.add ?? [],
  };
}

/** A container's memory limit in bytes, if it has one. */
export function memoryLimitBytes(c: V1Container): number | undefined {
  const limit = c.resources?.limits?.memory;
  const q = limit === undefined ? undefined : parseQuantity(limit);
  return q === undefined ? undefined : Number(q.num / q.den);
}

/**
 * Why the kubelet would refuse to start this container under runAsNonRoot, in its words, given the
 * image's USER; undefined when it may start.
 */
export function nonRootRefusal(security: ContainerSecurity, imageUser: string): string | undefined {
  if (!security.runAsNonRoot) return undefined;
  const uid = security.user ?? (imageUser === "" ? 0 : Number(imageUser.split(":")[0]));
  if (Number.isNaN(uid)) {
    return `container has runAsNonRoot and image has non-numeric user (${imageUser.split(":")[0]!}), cannot verify user is non-root`;
  }
  return uid === 0 ? "container has runAsNonRoot and image will run as root" : undefined;
}

/** The `podman run` arguments for a container. */
export function podmanRunArgs(c: ContainerRun): string[] {
  const s = c.security;
  const args = [
    "run",
    "--rm",
    "--replace",
    "--pull=never",
    `--name=${c.name}`,
    "--network=host",
    // Output reaches the caller through `podman run` itself; conmon keeps no second copy.
    "--log-driver=none",
    ...Object.entries(c.labels).map(([k, v]) => `--label=${k}=${v}`),
  ];
  if (s.user !== undefined) args.push(`--user=${s.user}${s.group !== undefined ? `:${s.group}` : ""}`);
  for (const g of s.supplementalGroups) args.push(`--group-add=${g}`);
  // A kubelet mounts nothing writable that the pod does not ask for: podman's default tmpfs on /tmp, /run
  // and /var/tmp would hide a write to the root filesystem.
  if (s.readOnlyRootFilesystem) args.push("--read-only", "--read-only-tmpfs=false");
  if (s.noNewPrivileges) args.push("--security-opt=no-new-privileges");
  for (const cap of s.capDrop) args.push(`--cap-drop=${cap}`);
  for (const cap of s.capAdd) args.push(`--cap-add=${cap}`);
  if (c.memoryBytes !== undefined) args.push(`--memory=${c.memoryBytes}`);
  for (const m of c.mounts) args.push(`--volume=${m.host}:${m.container}:${m.readOnly ? "ro" : "rw"}`);
  for (const [k, v] of Object.entries(c.env)) args.push(`--env=${k}=${v}`);
  if (c.command !== undefined) args.push(`--entrypoint=${JSON.stringify(c.command)}`);
  args.push(c.image, ...(c.args ?? []));
  return args;
}

/** Starts `podman run` in its own process group, its output appended to `logFile`. */
export function startContainer(c: ContainerRun, logFile: string): ChildProcess {
  const fd = openSync(logFile, "a");
  const child = spawn("podman", podmanRunArgs(c), {
    env: { ...process.env, ...containerEnv() },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  return child;
}

/** Runs podman with the project's private configuration; resolves with stdout, or rejects with its stderr. */
export function podman(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "podman",
      args,
      { env: { ...process.env, ...containerEnv() }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`podman ${args.join(" ")}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** Sends a signal to a running container; false when there is no such container (not started, or gone). */
export async function signalContainer(name: string, signal: NodeJS.Signals): Promise<boolean> {
  try {
    await podman(["kill", `--signal=${signal}`, name]);
    return true;
  } catch {
    return false;
  }
}

/** Kills and removes a container if it exists. */
export async function removeContainer(name: string): Promise<void> {
  await podman(["rm", "--force", "--ignore", "--time=0", name]).catch(() => undefined);
}

/** Kills and removes every container carrying `RUN_LABEL=value`. */
export async function removeLabelledContainers(value: string): Promise<void> {
  const ids = (await podman(["ps", "--all", "--quiet", `--filter=label=${RUN_LABEL}=${value}`]).catch(() => ""))
    .split("\n")
    .filter(Boolean);
  if (ids.length > 0) await podman(["rm", "--force", "--time=0", ...ids]).catch(() => undefined);
}

/** The image's USER ("" for root by default), or undefined when the image is not in local storage. */
export async function imageUser(image: string): Promise<string | undefined> {
  try {
    return (await podman(["image", "inspect", "--format={{.Config.User}}", image])).trim();
  } catch {
    return undefined;
  }
}
