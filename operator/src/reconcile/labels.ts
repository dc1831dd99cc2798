/** Labels, names and owner references that tie a ModelDeployment to its children. */
import { API_VERSION, KIND, type ModelDeployment } from "../api/index.ts";

/** A desired child: what server-side apply needs is always set. */
export type Desired<T> = T & { apiVersion: string; kind: string; metadata: { name: string; namespace: string } };

export const FIELD_MANAGER = "maas-operator";
export const MANAGED_BY = "maas-operator";

export const LabelKeys = {
  name: "app.kubernetes.io/name",
  instance: "app.kubernetes.io/instance",
  component: "app.kubernetes.io/component",
  managedBy: "app.kubernetes.io/managed-by",
  partOf: "app.kubernetes.io/part-of",
  /** The selector label of the serving pods (also what status.selector says). */
  deployment: "maas.dev/deployment",
} as const;

export const Annotations = {
  /**
   * On the pod template: a hash of the template, so every pod says which revision of the spec it
   * runs, and status can tell the new revision's pods from the previous one's during a rollout.
   */
  templateHash: "maas.dev/template-hash",
  /**
   * On each child: a hash of the whole object the operator applied. A spec change that only removes
   * a field changes it too, so such a change is applied (and server-side apply removes the field).
   */
  desiredHash: "maas.dev/desired-hash",
} as const;

/** Label selector (as a string) that picks exactly the children the operator manages. */
export const managedBySelector = `${LabelKeys.managedBy}=${MANAGED_BY}`;

export function selectorLabels(md: ModelDeployment): Record<string, string> {
  return { [LabelKeys.deployment]: md.metadata.name! };
}

export function selectorString(md: ModelDeployment): string {
  return `${LabelKeys.deployment}=${md.metadata.name!}`;
}

/** Standard labels on every child and pod; the user's own labels are not copied (they are the user's). */
export function childLabels(md: ModelDeployment): Record<string, string> {
  return {
    [LabelKeys.name]: "maas-serving",
    [LabelKeys.instance]: md.metadata.name!,
    [LabelKeys.component]: "model-server",
    [LabelKeys.partOf]: "maas",
    [LabelKeys.managedBy]: MANAGED_BY,
    ...selectorLabels(md),
  };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: boolean;
  blockOwnerDeletion: boolean;
}

export function ownerReference(md: ModelDeployment): OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: md.metadata.name!,
    uid: md.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when `obj` is controlled by this ModelDeployment (same uid), the only children we touch. */
export function isControlledBy(
  obj: { metadata?: { ownerReferences?: { uid?: string; controller?: boolean }[] } },
  md: ModelDeployment,
): boolean {
  return (obj.metadata?.ownerReferences ?? []).some((r) => r.controller === true && r.uid === md.metadata.uid);
}

/** The object an Event about this ModelDeployment regards. */
export function eventRegarding(md: ModelDeployment) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    namespace: md.metadata.namespace!,
    name: md.metadata.name!,
    uid: md.metadata.uid,
  };
}
