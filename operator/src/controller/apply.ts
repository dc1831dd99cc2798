import type { KubernetesObject, V1ManagedFieldsEntry, V1ObjectMeta } from "@kubernetes/client-node";
import { isConflict, isNotFound } from "./errors.ts";
import { ContentTypes, type KubeClient } from "./kube-client.ts";
import { apiVersionOf, collectionPath, objectPath, type Resource } from "./resources.ts";

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
  signal?: AbortSignal;
}

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
  return client.request<T & { metadata: V1ObjectMeta }>(
    "apply",
    objectPath(resource, obj.metadata.namespace ?? "", obj.metadata.name),
    {
      // JSON is YAML, so the apply-patch+yaml content type takes the object as JSON.
      body: obj,
      contentType: ContentTypes.applyPatch,
      query: { fieldManager, force: String(force) },
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
}

/**
 * Creates `obj` with a POST under our field manager, or fails with 409 AlreadyExists (whoever owns
 * the object, untouched). Cheaper for the API server than an apply that creates — no read of the
 * absent object from etcd, no merge — and the cost that decides how fast a burst of new
 * ModelDeployments converges (bench:operator measures both). The catch: the API server records the
 * fields of a POST (with the defaults it filled in) under our field manager's Update operation, not
 * its Apply operation, and server-side apply only removes a field we stop sending when no other
 * manager — our own Update entry included — still owns it. So before the first apply that changes
 * an object we created, `adoptCreatedFields` moves those fields to our Apply entry. Returns the
 * object as stored.
 */
export function createObject<T extends ApplyObject>(
  client: KubeClient,
  resource: Resource,
  obj: T,
  options: { fieldManager?: string; signal?: AbortSignal } = {},
): Promise<T & { metadata: V1ObjectMeta }> {
  checkApplyObject(resource, obj);
  const { fieldManager = FieldManagers.children } = options;
  return client.request<T & { metadata: V1ObjectMeta }>("create", collectionPath(resource, obj.metadata.namespace), {
    body: obj,
    contentType: ContentTypes.json,
    query: { fieldManager },
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * Whether `obj` has fields owned by `fieldManager`'s Update operation on the object itself (not a
 * subresource): what a POST by `createObject` leaves. Reads only manager and operation, so it also
 * works on a cached object that keeps just those (see reconcile/cache-shape.ts).
 */
export function hasUpdateFields(
  obj: KubernetesObject | undefined,
  fieldManager: string = FieldManagers.children,
): boolean {
  return (obj?.metadata?.managedFields ?? []).some((e) => isEntryOf(e, fieldManager, "Update"));
}

/** Whether `e` is `fieldManager`'s entry for `operation` on the object itself (not a subresource). */
function isEntryOf(e: V1ManagedFieldsEntry, fieldManager: string, operation: "Apply" | "Update"): boolean {
  return e.manager === fieldManager && e.operation === operation && !e.subresource;
}

/**
 * The managed fields with every field `fieldManager`'s Update operation owns (on the object, not a
 * subresource) moved into its Apply entry — the same fields, owned the way server-side apply needs to
 * remove them later — or undefined when there is no such Update entry. Pure.
 */
export function updateFieldsAsApply(
  entries: readonly V1ManagedFieldsEntry[],
  fieldManager: string = FieldManagers.children,
): V1ManagedFieldsEntry[] | undefined {
  const updates = entries.filter((e) => isEntryOf(e, fieldManager, "Update"));
  if (updates.length === 0) return undefined;
  const apply = entries.find((e) => isEntryOf(e, fieldManager, "Apply"));
  const fields = [apply, ...updates].reduce<object>((set, e) => unionOfFields(set, (e?.fieldsV1 ?? {}) as object), {});
  const { apiVersion, time } = apply ?? updates[0]!;
  const merged: V1ManagedFieldsEntry = {
    manager: fieldManager,
    operation: "Apply",
    ...(apiVersion === undefined ? {} : { apiVersion }),
    ...(time === undefined ? {} : { time }),
    fieldsType: "FieldsV1",
    fieldsV1: fields,
  };
  const rest = entries.filter((e) => !updates.includes(e) && e !== apply);
  return [merged, ...rest];
}

/**
 * The union of two field sets in the FieldsV1 encoding (a trie of JSON objects whose keys are path
 * elements — "f:spec", "k:{…}", "v:…", "i:0", "." — and whose leaves are `{}`). Pure.
 */
export function unionOfFields(a: object, b: object): object {
  const out: Record<string, object> = { ...(a as Record<string, object>) };
  for (const [k, v] of Object.entries(b as Record<string, object>)) {
    out[k] = k in out ? unionOfFields(out[k]!, v) : v;
  }
  return out;
}

/** How many times `adoptCreatedFields` reads and patches again when the object changed in between. */
export const ADOPT_ATTEMPTS = 5;

/**
 * Moves the fields our POST left under `fieldManager`'s Update operation to its Apply operation (see
 * `createObject`): a GET for the managed fields the caches do not keep, then one merge patch that
 * replaces them, conditional on the resourceVersion read, so no other manager's entry written in
 * between is overwritten. A Deployment's status changes often (each bumps its resourceVersion), so a
 * 409 reads and tries again, up to ADOPT_ATTEMPTS times, as client-go's RetryOnConflict does; the
 * last 409 is thrown. An object deleted meanwhile has nothing to move (the apply that follows
 * creates it, owned by Apply). Nothing else in the object changes. Returns whether it wrote.
 */
export async function adoptCreatedFields(
  client: KubeClient,
  resource: Resource,
  key: { namespace: string; name: string },
  options: { fieldManager?: string; signal?: AbortSignal } = {},
): Promise<boolean> {
  const path = objectPath(resource, key.namespace, key.name);
  const signal = options.signal ? { signal: options.signal } : {};
  for (let attempt = 1; ; attempt++) {
    try {
      const live = await client.request<KubernetesObject>("get", path, signal);
      const managedFields = updateFieldsAsApply(live.metadata?.managedFields ?? [], options.fieldManager);
      if (!managedFields) return false;
      await client.request("patch", path, {
        body: { metadata: { resourceVersion: live.metadata?.resourceVersion, managedFields } },
        contentType: ContentTypes.mergePatch,
        ...signal,
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      if (!isConflict(err) || attempt >= ADOPT_ATTEMPTS) throw err;
    }
  }
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
