/**
 * The situations a ModelDeployment can be in, and what Argo CD (our health.lua) and Flux (kstatus)
 * must say about each. The live suite builds every one on the test bed; its status samples, kept in
 * the health check's testdata/ in Argo CD's test layout, are checked again without a cluster.
 */
import { join } from "node:path";
import type { ArgoHealth, KstatusStatus } from "../../testbed/gitops-tools.ts";
import { repoRoot } from "../../testbed/paths.ts";

/** Argo CD's layout for a resource's health check: health.lua, health_test.yaml, testdata/. */
export const healthCheckDir = join(
  repoRoot,
  "charts",
  "maas-operator",
  "docs",
  "argocd",
  "maas.dev",
  "ModelDeployment",
);
export const healthLua = join(healthCheckDir, "health.lua");
export const healthTestYaml = join(healthCheckDir, "health_test.yaml");
export const sampleFile = (name: string) => join(healthCheckDir, "testdata", `${name}.yaml`);

export interface Situation {
  /** The sample's name in testdata/. */
  name: string;
  what: string;
  argo: ArgoHealth;
  kstatus: KstatusStatus;
  /** What Argo CD's message must say, so the verdict is explained, not only given. */
  argoMessage: RegExp;
}

export const situations: readonly Situation[] = [
  {
    name: "not-seen-yet",
    // No status at all: Argo CD's check waits for one; kstatus cannot tell an object no controller
    // has seen from one that needs none, and reads Current (README, Known limits).
    what: "no operator has seen it yet (no status)",
    argo: "Progressing",
    kstatus: "Current",
    argoMessage: /^Waiting for the maas operator to see this ModelDeployment$/,
  },
  {
    name: "ready",
    what: "serving on every replica",
    argo: "Healthy",
    kstatus: "Current",
    argoMessage: /^1\/1 replicas ready$/,
  },
  {
    name: "rolling",
    what: "rolling out a new spec while the previous revision serves",
    argo: "Progressing",
    kstatus: "InProgress",
    argoMessage: /^Rolling out the current spec: 0\/1 replicas of it ready, 1 of the previous revision still serving/,
  },
  {
    name: "waiting-for-gpus",
    what: "stuck on GPUs: its pod waits for free nvidia.com/gpu",
    argo: "Progressing",
    kstatus: "InProgress",
    argoMessage: /^0\/1 replicas ready: 1\/1 pods cannot be scheduled: .*Insufficient nvidia\.com\/gpu/,
  },
  {
    name: "fetch-failed",
    what: "the model cannot be fetched (404)",
    argo: "Degraded",
    kstatus: "Failed",
    argoMessage: /^model fetch failed: GET http:\/\/127\.0\.0\.1:\d+\/nowhere\/model\.json returned 404 Not Found/,
  },
  {
    name: "crash-looping",
    what: "the serving container is killed again and again (as by the OOM killer)",
    argo: "Degraded",
    kstatus: "Failed",
    argoMessage: /^Container serve of pod crashing-[a-z0-9]+-[a-z0-9]+ is crash looping \(\d+ restarts?\)/,
  },
  {
    name: "child-conflict",
    what: "a Deployment with its name belongs to someone else",
    argo: "Degraded",
    kstatus: "Failed",
    argoMessage: /^Deployment ml\/taken exists and is not controlled by this ModelDeployment/,
  },
  {
    name: "stale-generation",
    what: "its spec changed while the operator was down (observedGeneration behind generation)",
    argo: "Progressing",
    kstatus: "InProgress",
    argoMessage: /^Waiting for the maas operator to observe generation 2 \(status describes generation 1\)$/,
  },
  {
    name: "autoscaled-waiting-for-gpus",
    what: "autoscaled, serving at minReplicas while a scale-up waits for GPUs",
    argo: "Healthy",
    kstatus: "Current",
    argoMessage:
      /^1\/3 replicas ready \(autoscaled: 2 more on the way\); 2 of 3 desired replicas not ready: .*Insufficient nvidia\.com\/gpu/,
  },
  {
    name: "autoscaler-holding",
    what: "autoscaled, serving, its replicas held because Prometheus is unreachable",
    argo: "Suspended",
    kstatus: "Current",
    argoMessage:
      /^1\/1 replicas ready; autoscaling suspended: Holding 1 replica since \S+: Prometheus at http:\/\/\S+ is unreachable/,
  },
];

export interface HealthTest {
  healthStatus: { status: ArgoHealth; message: string };
  inputPath: string;
}
