/**
 * What to do with one child: create it, repair drift, leave it alone, or refuse because it is not
 * ours (KServe's child-reconciler shape). Drift is "some field we set has another value now";
 * fields others set (defaults, other managers) are not drift. Pure.
 */
import type { ModelDeployment } from "../api/index.ts";
import { contentHash } from "./hash.ts";
import { Annotations, isControlledBy } from "./labels.ts";
import { quantityNumber, quantityOf, roundUpToMilli } from "../api/quantity.ts";

export type ChildAction =
  { action: "create" } | { action: "update"; drift: string } | { action: "none" } | { action: "conflict" };

interface Child {
  metadata?: {
    ownerReferences?: { uid?: string; controller?: boolean }[];
    annotations?: Record<string, string> | undefined;
  };
}

/** The drift reported when only the desired hash differs: the spec changed in a way the child cannot show, e.g. by removing a field. */
export const DESIRED_HASH_DRIFT = `metadata.annotations.${Annotations.desiredHash}`;

/**
 * Create, update (naming the first field that differs), leave alone, or refuse. A child is updated
 * when a field we set has another value now (someone edited it), or when its desired hash differs
 * from the one we would stamp now (the spec changed, possibly only by removing a field, which a
 * field-by-field comparison of the desired object cannot see).
 */
export function classifyChild(md: ModelDeployment, desired: HashedChild, observed: Child | undefined): ChildAction {
  if (!observed) return { action: "create" };
  if (!isControlledBy(observed, md)) return { action: "conflict" };
  // apiVersion and kind name the type, not state (and list responses omit them on their items).
  const {
    apiVersion: _apiVersion,
    kind: _kind,
    metadata,
    ...rest
  } = desired as HashedChild & {
    apiVersion?: unknown;
    kind?: unknown;
  };
  const { [Annotations.desiredHash]: hash, ...annotations } = metadata.annotations ?? {};
  const drift = firstDrift({ metadata: withAnnotations(metadata, annotations), ...rest }, observed, "");
  if (drift !== undefined) return { action: "update", drift };
  return hash === observed.metadata?.annotations?.[Annotations.desiredHash]
    ? { action: "none" }
    : { action: "update", drift: DESIRED_HASH_DRIFT };
}

interface HashedChild {
  metadata: { annotations?: Record<string, string> | undefined };
}

/** `desired` with `Annotations.desiredHash` set to a hash of everything else in it. */
export function withDesiredHash<T extends HashedChild>(desired: T): T {
  const { [Annotations.desiredHash]: _old, ...annotations } = desired.metadata.annotations ?? {};
  const hash = contentHash({ ...desired, metadata: withAnnotations(desired.metadata, annotations) });
  return {
    ...desired,
    metadata: { ...desired.metadata, annotations: { ...annotations, [Annotations.desiredHash]: hash } },
  };
}

/** `metadata` with these annotations, or without the key when there are none (an empty map is not sent). */
function withAnnotations<M extends HashedChild["metadata"]>(metadata: M, annotations: Record<string, string>): M {
  const { annotations: _drop, ...rest } = metadata;
  return (Object.keys(annotations).length ? { ...rest, annotations } : rest) as M;
}

/**
 * Quantities are compared by value: the API server rewrites "0.5" as "500m", "1e4" as "10e3", "1000m"
 * as "1" and "1.5Gi" as "1536Mi", and rounds what a resource list holds up to a multiple of 1m
 * ("100u" becomes "1m"). Read with its own grammar (api/quantity.ts) and rounded the same way, so no
 * spelling it accepts ("1e3", "100u", ".5", "+1", "1.") looks like drift forever.
 */
export function quantityValue(s: string): number | undefined {
  const q = quantityOf(s);
  return q === undefined ? undefined : quantityNumber(roundUpToMilli(q));
}

/** The path of the first field of `want` whose value differs in `have`, or undefined. */
export function firstDrift(want: unknown, have: unknown, path: string): string | undefined {
  if (want === null || want === undefined) return undefined;
  // The API server drops empty strings and lists from omitempty fields: "" and [] come back absent,
  // which is the same value, not drift. (Not {}: an empty object such as emptyDir: {} is kept, and
  // its absence means something else replaced it.)
  if (have === undefined && (want === "" || (Array.isArray(want) && want.length === 0))) return undefined;
  if (Array.isArray(want)) {
    if (!Array.isArray(have) || have.length !== want.length) return path || "(root)";
    for (let i = 0; i < want.length; i++) {
      const d = firstDrift(want[i], have[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (typeof want === "object") {
    if (typeof have !== "object" || have === null || Array.isArray(have)) return path || "(root)";
    for (const [k, v] of Object.entries(want)) {
      const d = firstDrift(v, (have as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (want === have) return undefined;
  if (typeof want === "string" && typeof have === "string") {
    const a = quantityValue(want);
    const b = quantityValue(have);
    if (a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-9) return undefined;
  }
  return path || "(root)";
}
