/**
 * The Kubernetes resources the runtime talks to, and how their REST paths are built. One table,
 * so a new kind is one line here rather than a string scattered through the code.
 */
export interface Resource {
  /** "" for the core group. */
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export const Resources = {
  ModelDeployment: {
    group: "maas.dev",
    version: "v1alpha1",
    plural: "modeldeployments",
    kind: "ModelDeployment",
    namespaced: true,
  },
  Deployment: { group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true },
  Service: { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true },
  Pod: { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true },
  ConfigMap: { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true },
  Lease: { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true },
  Event: { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true },
} as const satisfies Record<string, Resource>;

/** "apps/v1", or "v1" for the core group. */
export function apiVersionOf(resource: Resource): string {
  return resource.group === "" ? resource.version : `${resource.group}/${resource.version}`;
}

/**
 * The collection path: all namespaces when `namespace` is undefined (namespaced kinds only).
 * e.g. /apis/apps/v1/namespaces/ml/deployments, /api/v1/pods.
 */
export function collectionPath(resource: Resource, namespace?: string): string {
  const root = resource.group === "" ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  if (!resource.namespaced || namespace === undefined) return `${root}/${resource.plural}`;
  return `${root}/namespaces/${encodeURIComponent(namespace)}/${resource.plural}`;
}

/** The path of one object, optionally of a subresource ("status", "scale"). */
export function objectPath(resource: Resource, namespace: string, name: string, subresource?: string): string {
  if (resource.namespaced && namespace === "") {
    throw new Error(`${resource.kind} ${name} is namespaced but no namespace was given`);
  }
  const base = `${collectionPath(resource, resource.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}
