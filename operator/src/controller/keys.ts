import type { KubernetesObject } from "@kubernetes/client-node";
import { formatKey } from "./reconciler.ts";
import type { InformerEvent } from "./informer.ts";

/**
 * Functions informer handlers use to turn an object into the key of the object to reconcile.
 * They compute keys and nothing else.
 */

/** The object's own key ("namespace/name"). */
export function keyOf(obj: KubernetesObject): string {
  return formatKey({ namespace: obj.metadata?.namespace ?? "", name: obj.metadata?.name ?? "" });
}

/**
 * The key of the controlling owner of `obj` if it is of `kind` in API group `group`
 * (ownerReferences with controller: true), else undefined. Deployments and Services map to
 * their ModelDeployment this way.
 */
export function controllerOwnerKey(obj: KubernetesObject, group: string, kind: string): string | undefined {
  const owner = obj.metadata?.ownerReferences?.find((ref) => ref.controller === true);
  if (!owner || owner.kind !== kind || groupOf(owner.apiVersion) !== group) return undefined;
  return formatKey({ namespace: obj.metadata?.namespace ?? "", name: owner.name });
}

/** The key named by label `label` on `obj` (Pods belong to a ReplicaSet, so they map by label), else undefined. */
export function labelKey(obj: KubernetesObject, label: string): string | undefined {
  const name = obj.metadata?.labels?.[label];
  return name ? formatKey({ namespace: obj.metadata?.namespace ?? "", name }) : undefined;
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash === -1 ? "" : apiVersion.slice(0, slash);
}

/**
 * A handler filter that passes adds, deletes and updates that changed `metadata.generation`
 * (spec changes), and drops updates that only touched status or metadata — so the operator's
 * own status writes do not enqueue its objects again. Remembers one number per object.
 */
export function generationChanged(): (obj: KubernetesObject, event: InformerEvent) => boolean {
  const seen = new Map<string, number | undefined>();
  return (obj, event) => {
    const key = keyOf(obj);
    if (event === "delete") {
      seen.delete(key);
      return true;
    }
    const generation = obj.metadata?.generation;
    const previous = seen.get(key);
    seen.set(key, generation);
    return event === "add" || generation === undefined || previous !== generation;
  };
}
