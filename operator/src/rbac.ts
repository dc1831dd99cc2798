/**
 * Every permission the operator's code needs, and nothing more. The chart's ClusterRole and Role
 * are generated from these (and a test fails if they drift), and the integration tests run the
 * operator with exactly these rules, so a missing rule fails a test rather than a user.
 */
import { GROUP, PLURAL } from "./api/index.ts";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Cluster-wide (or per watched namespace): read ModelDeployments, own their children, record Events. */
export const clusterRules: readonly PolicyRule[] = [
  { apiGroups: [GROUP], resources: [PLURAL], verbs: ["get", "list", "watch"] },
  // Status is written with server-side apply (PATCH).
  { apiGroups: [GROUP], resources: [`${PLURAL}/status`], verbs: ["get", "patch"] },
  // Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
  { apiGroups: [GROUP], resources: [`${PLURAL}/finalizers`], verbs: ["update"] },
  // Children are created with a POST and changed with server-side apply (PATCH), reads for a 409.
  { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch", "create", "patch"] },
  { apiGroups: [""], resources: ["services"], verbs: ["get", "list", "watch", "create", "patch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
];

/** In the operator's own namespace only: the leader election Lease. */
export const leaderElectionRules: readonly PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];
