import type { KubernetesObject, V1ObjectMeta } from "@kubernetes/client-node";
import { ContentTypes, type KubeClient } from "./kube-client.ts";
import { apiVersionOf, objectPath, type Resource } from "./resources.ts";

/** Field managers: one for the children we own, one for the ModelDeployment status. */
export const FieldManagers = {
  children: "maas-operator",
  status: "maas-operator-status",
} as const;

/** An object to apply: apiVersion, kind, metadata.name and (for namespaced kinds) metadata.namespace are required. */
export type ApplyObject = KubernetesObject & { apiVersion: string; kind: string; metadata: { name: string } };

export interface ApplyOptions {
  /** Default `FieldManagers.children`. */
  fieldManager?: string;
  /**
   * Take over fields another manager set (default true). Right for children where we are the
   * single writer of the fields we send; pass false to get a 409 instead of overriding someone.
   */
  force?: boolean;
  /**
   * Create the object, or fail with 409 if it exists (whoever owns it), in the one apply request:
   * the apply carries a resourceVersion no stored object has. The API server checks a resourceVersion
   * sent with an apply against the stored object's (409 when they differ) and ignores it when it
   * creates, so a new child costs one request instead of a GET and an apply, and every field stays
   * owned by the Apply operation of our field manager (a POST would own them as an Update).
   */
  ifAbsent?: boolean;
  signal?: AbortSignal;
}

/** The largest resourceVersion: etcd's revision counter never reaches it, so no stored object has it. */
export const NO_STORED_RESOURCE_VERSION = "18446744073709551615";

/**
 * Server-side apply of `obj` under a fixed field manager: the server merges it with what others
 * own, removes fields we sent before and no longer send, and — when nothing changes — writes
 * nothing (the resourceVersion stays the same), which keeps a converged operator at zero writes.
 * Returns the object as stored.
 */
export function applyObject<T extends ApplyObject>(
  client: KubeClient,
  resource: Resource,
  obj: T,
  options: ApplyOptions = {},
): Promise<T & { metadata: V1ObjectMeta }> {
  checkApplyObject(resource, obj);
  const { fieldManager = FieldManagers.children, force = true } = options;
  const body = options.ifAbsent
    ? Object.assign({}, obj, {
        metadata: Object.assign({}, obj.metadata, { resourceVersion: NO_STORED_RESOURCE_VERSION }),
      })
    : obj;
  return client.request<T & { metadata: V1ObjectMeta }>(
    "apply",
    objectPath(resource, obj.metadata.namespace ?? "", obj.metadata.name),
    {
      // JSON is YAML, so the apply-patch+yaml content type takes the object as JSON.
      body,
      contentType: ContentTypes.applyPatch,
      query: { fieldManager, force: String(force) },
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/**
 * Applies `status` to the status subresource of the object named by `key`, under its own field
 * manager, so status fields we stop sending are removed and fields other writers own (the
 * autoscaler's) are left alone. Pass `resourceVersion` to make it conditional (409 if the
 * object changed since it was read). Returns the object as stored.
 */
export function applyStatus<T extends KubernetesObject>(
  client: KubeClient,
  resource: Resource,
  key: { namespace: string; name: string },
  status: Record<string, unknown>,
  options: Omit<ApplyOptions, "force"> & { resourceVersion?: string } = {},
): Promise<T> {
  const { fieldManager = FieldManagers.status } = options;
  const apiVersion = apiVersionOf(resource);
  const metadata: Record<string, string> = { name: key.name, namespace: key.namespace };
  if (options.resourceVersion !== undefined) metadata.resourceVersion = options.resourceVersion;
  return client.request<T>("apply", objectPath(resource, key.namespace, key.name, "status"), {
    body: { apiVersion, kind: resource.kind, metadata, status },
    contentType: ContentTypes.applyPatch,
    // The status subresource has a single writer per field manager, so forcing is safe here.
    query: { fieldManager, force: "true" },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/** Rejects an object the API server would reject anyway, with a message naming what is missing. */
function checkApplyObject(resource: Resource, obj: ApplyObject): void {
  const expected = apiVersionOf(resource);
  if (obj.apiVersion !== expected || obj.kind !== resource.kind) {
    throw new Error(`apply: object is ${obj.apiVersion}/${obj.kind} but the resource is ${expected}/${resource.kind}`);
  }
  if (!obj.metadata.name) throw new Error(`apply: ${resource.kind} has no metadata.name`);
  if (resource.namespaced && !obj.metadata.namespace) {
    throw new Error(`apply: ${resource.kind} ${obj.metadata.name} has no metadata.namespace`);
  }
  if (obj.metadata.resourceVersion !== undefined || obj.metadata.managedFields !== undefined) {
    // Sending these back from a cached object would turn apply into a conditional update or fail it.
    throw new Error(
      `apply: ${resource.kind} ${obj.metadata.name} carries resourceVersion/managedFields; build it fresh`,
    );
  }
}
