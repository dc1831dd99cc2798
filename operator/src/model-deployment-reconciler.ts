/**
 * The ModelDeployment reconciler: read ▸ build desired children ▸ check ownership ▸ apply what
 * drifted ▸ compute status ▸ write it if it changed ▸ record Events on transitions. Everything it
 * reads comes from the informer caches (never mutated); the one exception is a direct GET when a
 * child is missing from the cache, to tell "absent" from "exists but is not ours" (the child caches
 * only hold objects with our managed-by label).
 */
import type { KubernetesObject, V1Deployment, V1Pod, V1Service } from "@kubernetes/client-node";
import { API_VERSION, KIND, type ModelDeployment } from "./api/index.ts";
import { applyObject, applyStatus, type ApplyObject } from "./controller/apply.ts";
import type { Clock } from "./controller/clock.ts";
import { ApiError, isNotFound } from "./controller/errors.ts";
import type { EventRecorder } from "./controller/events.ts";
import type { Informer } from "./controller/informer.ts";
import type { KubeClient } from "./controller/kube-client.ts";
import type { Logger } from "./controller/log.ts";
import { done, requeueAfter, type ObjectKey, type ReconcileResult, type Reconciler } from "./controller/reconciler.ts";
import { Resources, objectPath, type Resource } from "./controller/resources.ts";
import { classifyChild } from "./reconcile/classify.ts";
import { desiredDeployment, type OperatorSettings } from "./reconcile/desired-deployment.ts";
import { desiredService } from "./reconcile/desired-service.ts";
import { selectorLabels } from "./reconcile/labels.ts";
import { computeStatus, statusChanged, type ApplyError, type ChildConflict } from "./reconcile/status.ts";

/**
 * How often a ModelDeployment blocked by someone else's child, or by a forbidden apply (quota,
 * admission policy, RBAC), looks again: neither is watched.
 */
export const DEFAULT_CONFLICT_RECHECK_MS = 30_000;

export interface ModelDeploymentReconcilerOptions {
  client: KubeClient;
  modelDeployments: Informer<ModelDeployment>;
  deployments: Informer<V1Deployment>;
  services: Informer<V1Service>;
  pods: Informer<V1Pod>;
  events: EventRecorder;
  settings: OperatorSettings;
  log: Logger;
  clock: Clock;
  conflictRecheckMs?: number;
}

interface ChildOutcome<T> {
  observed: T | undefined;
  /** What was written, for the Event. */
  applied?: { verb: "Created" | "Updated"; what: string };
  conflict?: ChildConflict;
  applyError?: ApplyError;
}

export class ModelDeploymentReconciler implements Reconciler {
  readonly #o: ModelDeploymentReconcilerOptions;

  constructor(options: ModelDeploymentReconcilerOptions) {
    this.#o = options;
  }

  async reconcile(key: ObjectKey, signal: AbortSignal): Promise<ReconcileResult> {
    const md = this.#o.modelDeployments.get(key.namespace, key.name);
    // Gone or going: owner references let the garbage collector remove the children.
    if (!md || md.metadata.deletionTimestamp) return done;

    // The two children are independent: applying them concurrently halves a new object's latency.
    const [deployment, service] = await Promise.all([
      this.#child(md, Resources.Deployment, desiredDeployment(md, this.#o.settings), this.#o.deployments, signal),
      this.#child(md, Resources.Service, desiredService(md), this.#o.services, signal),
    ]);
    if (signal.aborted) return done;

    const conflicts = [deployment.conflict, service.conflict].filter((c): c is ChildConflict => c !== undefined);
    // Both children may be refused, for different reasons: status names both, and a forbidden one
    // (which can heal without a spec change) keeps the object rechecking.
    const refusals = [deployment.applyError, service.applyError].filter((e) => e !== undefined);
    const applyError: ApplyError | undefined = refusals.length
      ? { message: refusals.map((e) => e.message).join("; "), forbidden: refusals.some((e) => e.forbidden) }
      : undefined;
    const pods = this.#o.pods.list(key.namespace, selectorLabels(md));
    const { status, events } = computeStatus(
      md,
      { deployment: deployment.observed, pods, conflicts, applyError },
      new Date(this.#o.clock.now()),
    );
    if (statusChanged(md.status, status)) {
      await applyStatus(this.#o.client, Resources.ModelDeployment, key, status as Record<string, unknown>, { signal });
    }
    // One Event per verb, naming every child it touched ("Created Deployment ml/x and Service ml/x").
    const applied = [deployment.applied, service.applied].filter((a) => a !== undefined);
    const notes = (["Created", "Updated"] as const)
      .map((verb) => ({ verb, whats: applied.filter((a) => a.verb === verb).map((a) => a.what) }))
      .filter((n) => n.whats.length > 0);
    await Promise.all([
      ...notes.map((n) => this.#event(md, "Normal", n.verb, "Apply", `${n.verb} ${n.whats.join(" and ")}`)),
      ...events.map((e) => this.#event(md, e.type, e.reason, "Reconcile", e.message)),
    ]);
    // Someone else's child, a quota or a policy can go away without any event we watch: look again.
    return conflicts.length || applyError?.forbidden
      ? requeueAfter(this.#o.conflictRecheckMs ?? DEFAULT_CONFLICT_RECHECK_MS)
      : done;
  }

  /** Classifies one child and applies it when it is missing or drifted; reports conflicts and refusals. */
  async #child<T extends KubernetesObject>(
    md: ModelDeployment,
    resource: Resource,
    desired: ApplyObject,
    cache: Informer<T>,
    signal: AbortSignal,
  ): Promise<ChildOutcome<T>> {
    const { namespace, name } = { namespace: md.metadata.namespace!, name: md.metadata.name! };
    let observed = cache.get(namespace, name);
    if (!observed) observed = await this.#getUncached<T>(resource, namespace, name, signal);
    const decision = classifyChild(md, desired, observed);
    const log = this.#o.log.child({ object: `${namespace}/${name}`, child: resource.kind });
    switch (decision.action) {
      case "none":
        return { observed };
      case "conflict": {
        // The Degraded condition's transition records the Warning Event, once.
        log.warn("child exists and is not controlled by this ModelDeployment; leaving it alone");
        return { observed: undefined, conflict: { kind: resource.kind, name } };
      }
      case "create":
      case "update": {
        try {
          const applied = (await applyObject(this.#o.client, resource, desired, { signal })) as unknown as T;
          const verb = decision.action === "create" ? "Created" : "Updated";
          const why = decision.action === "update" ? ` (${decision.drift} had drifted)` : "";
          log.info({ drift: decision.action === "update" ? decision.drift : undefined }, `${verb} ${resource.kind}`);
          return { observed: applied, applied: { verb, what: `${resource.kind} ${namespace}/${name}${why}` } };
        } catch (err) {
          // The API server refused what we built from the spec (e.g. an invalid affinity: a retry
          // cannot help until the spec changes, which enqueues the object again), or something
          // forbade it (an admission policy, an exhausted quota, missing RBAC: looked at again
          // every conflict recheck, since those change without the spec changing). Either way the
          // user reads why in status and in a Warning Event, not only in the operator's log.
          if (err instanceof ApiError && [400, 403, 422].includes(err.statusCode)) {
            const message = `The API server refused the ${resource.kind}: ${err.detail}`;
            await this.#event(md, "Warning", "ApplyFailed", "Apply", message);
            return { observed, applyError: { message, forbidden: err.statusCode === 403 } };
          }
          throw err;
        }
      }
    }
  }

  async #getUncached<T>(
    resource: Resource,
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    try {
      return await this.#o.client.request<T>("get", objectPath(resource, namespace, name), { signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  #event(md: ModelDeployment, type: "Normal" | "Warning", reason: string, action: string, note: string): Promise<void> {
    return this.#o.events.record({
      regarding: {
        apiVersion: API_VERSION,
        kind: KIND,
        namespace: md.metadata.namespace!,
        name: md.metadata.name!,
        uid: md.metadata.uid,
      },
      type,
      reason,
      action,
      note,
    });
  }
}
