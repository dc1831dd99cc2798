/**
 * What the operator's caches keep of each object: only what the reconciler, the status computation
 * and the autoscaler read, so a cluster with thousands of ModelDeployments fits in a small
 * operator. Applied by each informer before an object is stored (as controller-runtime users do
 * with a cache transform). Pure.
 *
 * - Every kind loses metadata.managedFields (often larger than the object itself) and kubectl's
 *   last-applied-configuration annotation (a second copy of the spec). Nothing in the operator
 *   reads them: ownership of our fields is settled by server-side apply on the server.
 * - Pods keep only their identity, labels, annotations and owners, and of their status the
 *   phase, conditions and container statuses (what `status.ts` reads); the pod spec is dropped.
 * - Deployments and Services keep their spec: drift is judged against it, and of their managed
 *   fields only a marker (manager and operation, no fields) when our field manager's Update
 *   operation owns fields: the operator created the child with a POST and moves those fields to
 *   its Apply operation before it first changes it (controller/apply.ts, `createObject`).
 */
import type { KubernetesObject, V1ContainerStatus, V1ObjectMeta, V1Pod } from "@kubernetes/client-node";
import { FieldManagers, hasUpdateFields } from "../controller/apply.ts";

export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

function slimMetadata(metadata: V1ObjectMeta | undefined): V1ObjectMeta | undefined {
  if (!metadata) return metadata;
  const { managedFields: _managedFields, ...rest } = metadata;
  const annotations = rest.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) {
    const { [LAST_APPLIED_ANNOTATION]: _lastApplied, ...others } = annotations;
    rest.annotations = others;
  }
  return rest;
}

/** Any kind: the object without managedFields and the last-applied annotation. */
export function withoutBookkeeping<T extends KubernetesObject>(obj: T): T {
  if (!obj.metadata) return obj;
  return { ...obj, metadata: slimMetadata(obj.metadata) };
}

/** The marker, one frozen copy shared by every cached child that has it. */
const UPDATE_FIELDS_MARKER: V1ObjectMeta["managedFields"] = Object.freeze([
  Object.freeze({ manager: FieldManagers.children, operation: "Update" }),
]) as V1ObjectMeta["managedFields"];

/** A child (Deployment, Service): `withoutBookkeeping`, keeping a marker if our Update operation owns fields. */
export function childForCache<T extends KubernetesObject>(obj: T): T {
  const slim = withoutBookkeeping(obj);
  if (!hasUpdateFields(obj)) return slim;
  return { ...slim, metadata: Object.assign({}, slim.metadata, { managedFields: UPDATE_FIELDS_MARKER }) };
}

function slimContainerStatus(s: V1ContainerStatus): V1ContainerStatus {
  return {
    name: s.name,
    ready: s.ready,
    restartCount: s.restartCount,
    image: s.image,
    imageID: s.imageID,
    ...(s.started === undefined ? {} : { started: s.started }),
    ...(s.state ? { state: s.state } : {}),
    ...(s.lastState ? { lastState: s.lastState } : {}),
  };
}

/** A Pod as the status computation reads it: identity, labels, annotations, owners, phase, conditions, container statuses. */
export function podForStatus(pod: V1Pod): V1Pod {
  const m = pod.metadata ?? {};
  const metadata: V1ObjectMeta = {};
  for (const key of [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generateName",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
  ] as const) {
    if (m[key] !== undefined) (metadata as Record<string, unknown>)[key] = m[key];
  }
  if (m.annotations) {
    const { [LAST_APPLIED_ANNOTATION]: _lastApplied, ...annotations } = m.annotations;
    metadata.annotations = annotations;
  }
  const s = pod.status;
  return {
    apiVersion: pod.apiVersion ?? "v1",
    kind: pod.kind ?? "Pod",
    metadata,
    ...(s
      ? {
          status: {
            ...(s.phase ? { phase: s.phase } : {}),
            ...(s.conditions ? { conditions: s.conditions } : {}),
            ...(s.containerStatuses ? { containerStatuses: s.containerStatuses.map(slimContainerStatus) } : {}),
            ...(s.initContainerStatuses
              ? { initContainerStatuses: s.initContainerStatuses.map(slimContainerStatus) }
              : {}),
          },
        }
      : {}),
  };
}
