/**
 * The test bed's local node agent: the kubelet of one node that kwok does not manage. It keeps
 * the Node Ready (status and Lease), runs the pods bound to it as local processes (PodRunner),
 * reports their status, finishes deletions after SIGTERM and the grace period, and publishes
 * container ports (for tests) and Prometheus file-SD targets. Test bed only — never production.
 *
 * Pods are discovered by polling the API server with a field selector on spec.nodeName every
 * 300 ms: simpler than a watch and cheap for the handful of pods this node runs.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import type { V1Pod, V1PodList } from "@kubernetes/client-node";
import { commandTable } from "./commands.ts";
import { Kube, KubeError } from "./kube.ts";
import { PodRunner } from "./pod-runner.ts";
import { localNodeGpus, localNodeTaint } from "../nodes.ts";
import { freePort } from "../proc.ts";

const { values: args } = parseArgs({
  options: {
    kubeconfig: { type: "string" },
    "node-name": { type: "string" },
    "work-dir": { type: "string" },
    "ports-file": { type: "string" },
    "pvc-dir": { type: "string" },
    "targets-file": { type: "string" },
    "repo-root": { type: "string" },
    // Image mode: run containers from their images with podman (labelled with this value).
    "images-run-label": { type: "string" },
  },
});
const need = (k: keyof typeof args): string => {
  const v = args[k];
  if (typeof v !== "string") throw new Error(`--${k} is required`);
  return v;
};
const nodeName = need("node-name");
const kube = new Kube(need("kubeconfig"));
const workDir = need("work-dir");
const portsFile = need("ports-file");
const targetsFile = need("targets-file");
const commands = commandTable(need("repo-root"));
const runLabel = args["images-run-label"];

/** What a kubelet gets for a projected ServiceAccount token: a token bound to the pod (TokenRequest API). */
async function requestToken(pod: V1Pod, expirationSeconds: number, audience: string | undefined): Promise<string> {
  const { namespace, name, uid } = pod.metadata!;
  const sa = pod.spec?.serviceAccountName ?? "default";
  const review = await kube.request<{ status: { token: string } }>(
    "POST",
    `/api/v1/namespaces/${namespace!}/serviceaccounts/${sa}/token`,
    {
      apiVersion: "authentication.k8s.io/v1",
      kind: "TokenRequest",
      spec: {
        ...(audience ? { audiences: [audience] } : {}),
        expirationSeconds,
        boundObjectRef: { apiVersion: "v1", kind: "Pod", name, uid },
      },
    },
  );
  return review.status.token;
}
const images = runLabel
  ? { runLabel, apiServer: { host: kube.server.hostname, port: kube.server.port }, requestToken }
  : undefined;

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...fields }) + "\n");
}

function writeAtomic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

const runners = new Map<string, PodRunner>();
const lastStatus = new Map<string, string>();
const labelsOf = new Map<string, Record<string, string>>();
const lastWritten = new Map<string, string>();

async function readData(kind: "Secret" | "ConfigMap", namespace: string, name: string) {
  const plural = kind === "Secret" ? "secrets" : "configmaps";
  try {
    const obj = await kube.request<{ data?: Record<string, string> }>(
      "GET",
      `/api/v1/namespaces/${namespace}/${plural}/${name}`,
    );
    const data = obj.data ?? {};
    if (kind === "ConfigMap") return data;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return undefined;
    throw err;
  }
}

const resources = {
  cpu: "2",
  memory: "16Gi",
  pods: "30",
  "ephemeral-storage": "100Gi",
  "nvidia.com/gpu": String(localNodeGpus.count),
};
const nodeStatus = () => ({
  capacity: resources,
  allocatable: resources,
  conditions: [
    {
      type: "Ready",
      status: "True",
      reason: "KubeletReady",
      message: "testbed node agent is posting ready status",
      lastHeartbeatTime: new Date().toISOString(),
      lastTransitionTime: startedAt,
    },
  ],
  addresses: [
    { type: "InternalIP", address: "127.0.0.1" },
    { type: "Hostname", address: nodeName },
  ],
  nodeInfo: {
    architecture: "amd64",
    operatingSystem: "linux",
    kubeletVersion: "testbed-node-agent",
    kubeProxyVersion: "",
    containerRuntimeVersion: "testbed://local-processes",
    kernelVersion: "",
    osImage: "maas test bed",
    machineID: "",
    systemUUID: "",
    bootID: "",
  },
});
const startedAt = new Date().toISOString();

async function registerNode(): Promise<void> {
  const body = {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: nodeName,
      labels: {
        "kubernetes.io/hostname": nodeName,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        type: "local",
        "nvidia.com/gpu.product": localNodeGpus.product,
        "nvidia.com/gpu.count": String(localNodeGpus.count),
      },
    },
    spec: { taints: [{ ...localNodeTaint }] },
    status: nodeStatus(),
  };
  try {
    await kube.request("POST", "/api/v1/nodes", body);
    log("Registered node", { node: nodeName });
  } catch (err) {
    if (!(err instanceof KubeError && err.status === 409)) throw err;
  }
}

async function heartbeat(): Promise<void> {
  await kube.request(
    "PATCH",
    `/api/v1/nodes/${nodeName}/status`,
    { status: nodeStatus() },
    "application/merge-patch+json",
  );
  const lease = {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name: nodeName, namespace: "kube-node-lease" },
    spec: {
      holderIdentity: nodeName,
      leaseDurationSeconds: 40,
      renewTime: new Date().toISOString().replace("Z", "000Z"),
    },
  };
  try {
    await kube.request(
      "PATCH",
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${nodeName}`,
      lease,
      "application/merge-patch+json",
    );
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) {
      await kube.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease);
    } else throw err;
  }
}

async function syncPods(): Promise<void> {
  const list = await kube.request<V1PodList>(
    "GET",
    `/api/v1/pods?fieldSelector=spec.nodeName%3D${encodeURIComponent(nodeName)}`,
  );
  const seen = new Set<string>();
  for (const pod of list.items) {
    const uid = pod.metadata!.uid!;
    seen.add(uid);
    labelsOf.set(uid, pod.metadata?.labels ?? {});
    let runner = runners.get(uid);
    if (!runner) {
      if (pod.metadata?.deletionTimestamp) {
        await finishDelete(pod);
        continue;
      }
      runner = new PodRunner(pod, {
        workDir,
        pvcDir: need("pvc-dir"),
        commands,
        allocatePort: freePort,
        readData,
        log,
        ...(images ? { images } : {}),
      });
      runners.set(uid, runner);
      log("Admitted pod", { pod: `${pod.metadata!.namespace!}/${pod.metadata!.name!}` });
      try {
        await runner.start();
      } catch (err) {
        // E.g. a projected token the API server would not issue yet: the next sync admits the pod again.
        runners.delete(uid);
        log("Starting pod failed; retrying", { pod: `${runner.namespace}/${runner.name}`, error: String(err) });
        continue;
      }
    }
    runner.update(pod);
    if (pod.metadata?.deletionTimestamp && !runner.isTerminating) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      log("Killing pod", { pod: `${runner.namespace}/${runner.name}`, graceSeconds: grace });
      void runner
        .terminate(grace)
        .then(() => finishDelete(pod))
        .catch((err: unknown) => {
          log("Finishing delete failed", { error: String(err) });
        })
        .finally(() => {
          runners.delete(uid);
          labelsOf.delete(uid);
          lastStatus.delete(uid);
        });
    }
  }
  // Pods deleted without a grace period (force) disappear at once: stop their processes.
  for (const [uid, runner] of runners) {
    if (!seen.has(uid) && !runner.isTerminating) {
      runners.delete(uid);
      labelsOf.delete(uid);
      lastStatus.delete(uid);
      void runner.terminate(0);
    }
  }
}

async function finishDelete(pod: V1Pod): Promise<void> {
  const { namespace, name, uid } = pod.metadata!;
  try {
    await kube.request("DELETE", `/api/v1/namespaces/${namespace!}/pods/${name!}`, {
      apiVersion: "v1",
      kind: "DeleteOptions",
      gracePeriodSeconds: 0,
      preconditions: { uid },
    });
    log("Deleted pod", { pod: `${namespace!}/${name!}` });
  } catch (err) {
    if (!(err instanceof KubeError && (err.status === 404 || err.status === 409))) throw err;
  }
}

/** Reports changed pod statuses and rewrites the ports and targets files when their content changed. */
async function publish(): Promise<void> {
  const ports: Record<string, number> = {};
  const targets: { targets: string[]; labels: Record<string, string> }[] = [];
  for (const r of runners.values()) {
    for (const [cp, lp] of r.portMap()) ports[`${r.namespace}/${r.name}/${cp}`] = lp;
    if (r.isTerminating) continue;
    const status = r.status();
    const key = `${r.namespace}/${r.name}`;
    const json = JSON.stringify(status);
    if (lastStatus.get(r.uid) !== json) {
      try {
        await kube.request(
          "PATCH",
          `/api/v1/namespaces/${r.namespace}/pods/${r.name}/status`,
          { status },
          "application/merge-patch+json",
        );
        lastStatus.set(r.uid, json);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 404))
          log("Status update failed", { pod: key, error: String(err) });
      }
    }
    const t = r.scrapeTarget();
    if (t) targets.push({ targets: [t.target], labels: scrapeLabels(r, t.path) });
  }
  for (const [file, content] of [
    [portsFile, JSON.stringify(ports, null, 2)],
    [targetsFile, JSON.stringify(targets, null, 2)],
  ] as const) {
    if (lastWritten.get(file) !== content) {
      writeAtomic(file, content);
      lastWritten.set(file, content);
    }
  }
}

function scrapeLabels(r: PodRunner, path: string): Record<string, string> {
  const podLabels = labelsOf.get(r.uid) ?? {};
  const out: Record<string, string> = { namespace: r.namespace, pod: r.name, node: nodeName, __metrics_path__: path };
  for (const [k, v] of Object.entries(podLabels)) out[k.replace(/[^a-zA-Z0-9_]/g, "_")] = v;
  return out;
}

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  log("Stopping node agent; terminating pods", { pods: runners.size });
  await Promise.all([...runners.values()].map((r) => r.terminate(5)));
  kube.close();
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown());
process.on("SIGINT", () => void shutdown());

async function loop(): Promise<void> {
  await registerNode();
  let lastBeat = 0;
  for (;;) {
    if (stopping) return;
    try {
      if (Date.now() - lastBeat > 10_000) {
        await heartbeat();
        lastBeat = Date.now();
      }
      await syncPods();
      await publish();
    } catch (err) {
      log("Sync failed; retrying", { error: err instanceof Error ? err.message : String(err) });
    }
    await new Promise((res) => setTimeout(res, 300));
  }
}

void loop();
