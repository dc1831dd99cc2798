/**
 * What the image checks share: the built images (built first if missing), temporary volumes, and
 * containers run with podman exactly as podman.ts runs a pod's containers, cleaned up by label.
 */
import { once } from "node:events";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Container, V1PodSpec } from "@kubernetes/client-node";
import { tempDir } from "../serving/fixtures.ts";
import { ensureImages, type ImageRefs } from "../../testbed/images.ts";
import {
  containerSecurity,
  memoryLimitBytes,
  removeLabelledContainers,
  RUN_LABEL,
  signalContainer,
  startContainer,
  type ContainerRun,
} from "../../testbed/podman.ts";

/** The RUN_LABEL value of this process's checks: `removeCheckContainers` ends whatever is left of them. */
const label = `image-checks-${process.pid}`;
let counter = 0;

let built: Promise<ImageRefs> | undefined;
/** The images of this tree, built once per process if missing (progress on stderr). */
export function builtImages(): Promise<ImageRefs> {
  built ??= ensureImages();
  return built;
}

/** A directory a container's user can write, as the kubelet makes an emptyDir. */
export async function volume(prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  chmodSync(dir, 0o777);
  return dir;
}

export interface RunningContainer {
  name: string;
  /** The container's exit code, once `podman run` returns it. */
  exited: Promise<number | null>;
  log(): string;
  /** What the container wrote to its termination-message file. */
  terminationMessage(): string;
  signal(sig: NodeJS.Signals): Promise<boolean>;
}

/**
 * Runs `container` of `pod` from `image` as the node agent would: the pod's command, args, literal env and
 * security context, the memory limit, and a file at its termination-message path; `mounts` maps its volume
 * mounts (by volume name) to directories.
 */
export function runPodContainer(
  pod: V1PodSpec,
  container: V1Container,
  image: string,
  opts: { mounts: Record<string, string>; env?: Record<string, string>; logDir: string },
): RunningContainer {
  const name = `maas-image-check-${process.pid}-${++counter}`;
  const logFile = join(opts.logDir, `${name}.log`);
  const terminationFile = join(opts.logDir, `${name}.termination-log`);
  writeFileSync(terminationFile, "", { mode: 0o666 });
  chmodSync(terminationFile, 0o666);
  const env = Object.fromEntries(
    (container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
  const run: ContainerRun = {
    name,
    image,
    command: container.command,
    args: container.args,
    env: { ...env, ...opts.env },
    mounts: [
      ...(container.volumeMounts ?? []).map((m) => {
        const host = opts.mounts[m.name];
        if (!host) throw new Error(`no directory for volume ${m.name}`);
        return { host, container: m.mountPath, readOnly: m.readOnly ?? false };
      }),
      { host: terminationFile, container: container.terminationMessagePath ?? "/dev/termination-log", readOnly: false },
    ],
    security: containerSecurity(pod.securityContext, container),
    memoryBytes: memoryLimitBytes(container),
    labels: { [RUN_LABEL]: label },
  };
  const child = startContainer(run, logFile);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return {
    name,
    exited,
    log: () => readFileSync(logFile, "utf8"),
    terminationMessage: () => readFileSync(terminationFile, "utf8"),
    signal: (sig) => signalContainer(name, sig),
  };
}

export async function removeCheckContainers(): Promise<void> {
  await removeLabelledContainers(label);
}
