/**
 * The ModelDeployment reconciler: read ▸ build desired children ▸ check ownership ▸ apply what
 * drifted ▸ compute status ▸ write it if it changed ▸ record Events on transitions. Everything it
 * reads comes from the informer caches (never mutated); the exceptions are a direct GET when a
 * child missing from the cache turns out to exist (its POST got 409), to tell whose it is (the child
 * caches only hold objects with our managed-by label), and one when a child we created is first
 * changed, for the managed fields the caches do not keep (see `createObject`).
 */
import type { KubernetesObject, V1Deployment, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ModelDeployment } from "./api/index.ts";
import {
  adoptCreatedFields,
  applyObject,
  applyStatus,
  createObject,
  hasUpdateFields,
  type ApplyObject,
} from "./controller/apply.ts";
import type { Clock } from "./controller/clock.ts";
import { ApiError, TemporaryError, isAlreadyExists, isNotFound } from "./controller/errors.ts";
import type { EventRecorder } from "./controller/events.ts";
import type { Informer } from "./controller/informer.ts";
import type { KubeClient } from "./controller/kube-client.ts";
import type { Logger } from "./controller/log.ts";
import { done, requeueAfter, type ObjectKey, type ReconcileResult, type Reconciler } from "./controller/reconciler.ts";
import { Resources, objectPath, type Resource } from "./controller/resources.ts";
import { DESIRED_HASH_DRIFT, classifyChild, withDesiredHash } from "./reconcile/classify.ts";
import { desiredDeployment, templateHashOf, type OperatorSettings } from "./reconcile/desired-deployment.ts";
import { desiredService } from "./reconcile/desired-service.ts";
import { eventRegarding, selectorLabels } from "./reconcile/labels.ts";
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
  /** Whether this operator runs the autoscaler (status says so on autoscaled objects). */
  autoscalerEnabled: boolean;
}

interface ChildOutcome<T> {
  observed: T | undefined;
  /**
   * What was written, for the Event; `changed` when the API server stored a new version (so the
   * child's informer will see it and queue this object again).
   */
  applied?: { verb: "Created" | "Updated"; what: string; changed: boolean };
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

    const desired = desiredDeployment(md, this.#o.settings);
    // The two children are independent: applying them concurrently halves a new object's latency.
    const [deployment, service] = await Promise.all([
      this.#child(md, Resources.Deployment, withDesiredHash(desired), this.#o.deployments, signal),
      this.#child(md, Resources.Service, withDesiredHash(desiredService(md)), this.#o.services, signal),
    ]);
    if (signal.aborted) return done;

    const conflicts = [deployment.conflict, service.conflict].filter((c): c is ChildConflict => c !== undefined);
    // Both children may be refused, for different reasons: status names both; the most retryable
    // kind decides how the object is looked at again.
    const refusals = [deployment.applyError, service.applyError].filter((e) => e !== undefined);
    const applyError: ApplyError | undefined = refusals.length
      ? {
          message: refusals.map((e) => e.message).join("; "),
          kind: refusals.some((e) => e.kind === "failed")
            ? "failed"
            : refusals.some((e) => e.kind === "forbidden")
              ? "forbidden"
              : "invalid",
        }
      : undefined;
    const pods = this.#o.pods.list(key.namespace, selectorLabels(md));
    const { status, events } = computeStatus(
      md,
      {
        deployment: deployment.observed,
        pods,
        conflicts,
        applyError,
        templateHash: templateHashOf(desired) ?? "",
        autoscalerEnabled: this.#o.autoscalerEnabled,
      },
      new Date(this.#o.clock.now()),
    );
    // A child this pass changed at the API server comes back through its informer and queues this
    // object again, with the child as stored: status is written on that pass. On a quiet cluster
    // that is milliseconds later; under a burst of new objects it comes later (in bench:operator,
    // once the pods were up), so a new object's status is written once instead of twice. A refusal
    // or conflict is reported at once.
    const echoed =
      applyError === undefined &&
      conflicts.length === 0 &&
      (deployment.applied?.changed === true || service.applied?.changed === true);
    if (!echoed && statusChanged(md.status, status)) {
      await applyStatus(this.#o.client, Resources.ModelDeployment, key, status as Record<string, unknown>, { signal });
    }
    // One Event per verb, naming every child it touched ("Created Deployment ml/x and Service ml/x").
    // Creating a new object's children is what its user asked for and status says so (Progressing,
    // then Ready, with its Event): an Event for it would be one more write per new object (a fifth)
    // for nothing the user needs. A child created for an object that had status (it was deleted, or its name
    // became free) and every update (drift, a spec change) are news, and get one.
    const isNew = (md.status?.conditions ?? []).length === 0;
    const applied = [deployment.applied, service.applied]
      .filter((a) => a !== undefined)
      .filter((a) => !(isNew && a.verb === "Created"));
    const notes = (["Created", "Updated"] as const)
      .map((verb) => ({ verb, whats: applied.filter((a) => a.verb === verb).map((a) => a.what) }))
      .filter((n) => n.whats.length > 0);
    // Written in the background: the next object's children need not wait for this one's Events.
    for (const n of notes) this.#event(md, "Normal", n.verb, "Apply", `${n.verb} ${n.whats.join(" and ")}`);
    // Status Events mark transitions of the stored status: when it was not written, the next pass
    // finds the same transitions and records them.
    if (!echoed) for (const e of events) this.#event(md, e.type, e.reason, "Reconcile", e.message);
    // A failed apply (5xx, timeout) is in status now; the queue's back-off retries it, capped at
    // the conflict recheck: a webhook or an API server that recovers is no event we watch.
    if (applyError?.kind === "failed") {
      throw new TemporaryError(applyError.message, undefined, {
        maxDelayMs: this.#o.conflictRecheckMs ?? DEFAULT_CONFLICT_RECHECK_MS,
      });
    }
    // Someone else's child, a quota or a policy can go away without any event we watch: look again.
    return conflicts.length || applyError?.kind === "forbidden"
      ? requeueAfter(this.#o.conflictRecheckMs ?? DEFAULT_CONFLICT_RECHECK_MS)
      : done;
  }

  /** Classifies one child and applies it when it is missing or drifted; reports conflicts and refusals. */
  async #child<T extends KubernetesObject>(
    md: ModelDeployment,
    resource: Resource,
    desired: ApplyObject & { metadata: { annotations?: Record<string, string> } },
    cache: Informer<T>,
    signal: AbortSignal,
  ): Promise<ChildOutcome<T>> {
    const { namespace, name } = { namespace: md.metadata.namespace!, name: md.metadata.name! };
    const log = this.#o.log.child({ object: `${namespace}/${name}`, child: resource.kind });
    let observed = cache.get(namespace, name);
    if (!observed) {
      // Missing from the cache (which holds only children with our label) is almost always new: it
      // is created by a POST that fails if it exists after all; only then a GET says whose it is.
      const created = await this.#apply<T>(md, resource, desired, { action: "create" }, undefined, true, log, signal);
      if (created !== "exists") return created;
      observed = await this.#getUncached<T>(resource, namespace, name, signal);
    }
    const decision = classifyChild(md, desired, observed);
    switch (decision.action) {
      case "none":
        return { observed };
      case "conflict":
        // The Degraded condition's transition records the Warning Event, once.
        log.warn("child exists and is not controlled by this ModelDeployment; leaving it alone");
        return { observed: undefined, conflict: { kind: resource.kind, name } };
      case "create":
      case "update": {
        const applied = await this.#apply<T>(md, resource, desired, decision, observed, false, log, signal);
        return applied === "exists" ? { observed } : applied; // never: not create-only
      }
    }
  }

  /**
   * Writes one child: with `ifAbsent`, a POST that creates it ("exists" if it exists); otherwise a
   * server-side apply, after moving the fields of our POST to our Apply operation if we created it
   * and have not changed it since. A refusal is reported as the child's applyError (and a Warning
   * Event).
   */
  async #apply<T>(
    md: ModelDeployment,
    resource: Resource,
    desired: ApplyObject,
    decision: { action: "create" } | { action: "update"; drift: string },
    observed: T | undefined,
    ifAbsent: boolean,
    log: Logger,
    signal: AbortSignal,
  ): Promise<ChildOutcome<T> | "exists"> {
    const { namespace, name } = { namespace: md.metadata.namespace!, name: md.metadata.name! };
    try {
      if (!ifAbsent && hasUpdateFields(observed as KubernetesObject | undefined)) {
        await adoptCreatedFields(this.#o.client, resource, { namespace, name }, { signal });
      }
      const applied = (ifAbsent
        ? await createObject(this.#o.client, resource, desired, { signal })
        : await applyObject(this.#o.client, resource, desired, { signal })) as unknown as T;
      const verb = decision.action === "create" ? "Created" : "Updated";
      const why =
        decision.action === "create"
          ? ""
          : decision.drift === DESIRED_HASH_DRIFT
            ? " (the spec changed)"
            : decision.drift === "spec.replicas" && md.spec.autoscaling
              ? ` (spec.replicas set to ${String(desiredReplicasOf(desired))}, the autoscaler's decision)`
              : ` (${decision.drift} had drifted)`;
      log.info({ drift: decision.action === "update" ? decision.drift : undefined }, `${verb} ${resource.kind}`);
      const changed = resourceVersionOf(applied) !== resourceVersionOf(observed);
      return { observed: applied, applied: { verb, what: `${resource.kind} ${namespace}/${name}${why}`, changed } };
    } catch (err) {
      if (signal.aborted) throw err;
      // It exists (someone else's, or ours and not yet in the cache): the caller looks at it.
      if (ifAbsent && isAlreadyExists(err)) return "exists";
      // Every refusal reaches status (and a Warning Event), never only the log: the API server
      // refused what we built from the spec (400/422: retried when the spec changes), something
      // forbade it (403: a quota, an admission policy, RBAC; looked at again every conflict
      // recheck), or the request failed (5xx, a timeout, a conflict; retried with back-off).
      const refusal = applyRefusal(resource.kind, err);
      this.#event(md, "Warning", "ApplyFailed", "Apply", refusal.message);
      log.warn({ err: refusal.message, kind: refusal.kind }, `applying the ${resource.kind} failed`);
      return { observed, applyError: refusal };
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

  #event(md: ModelDeployment, type: "Normal" | "Warning", reason: string, action: string, note: string): void {
    this.#o.events.emit({
      regarding: eventRegarding(md),
      type,
      reason,
      action,
      note,
    });
  }
}

/** What a failed apply means for the user, in the API server's words (or the network's). */
export function applyRefusal(kind: string, err: unknown): ApplyError {
  if (err instanceof ApiError) {
    if (err.statusCode === 400 || err.statusCode === 422) {
      return { kind: "invalid", message: `The API server refused the ${kind}: ${err.detail}` };
    }
    if (err.statusCode === 403)
      return { kind: "forbidden", message: `The API server refused the ${kind}: ${err.detail}` };
    return {
      kind: "failed",
      message: `The API server failed to apply the ${kind} (${err.statusCode}${err.reason ? " " + err.reason : ""}): ${err.detail}; retrying with back-off`,
    };
  }
  const detail = err instanceof Error ? err.message : String(err);
  return { kind: "failed", message: `Applying the ${kind} failed: ${detail}; retrying with back-off` };
}

function resourceVersionOf(obj: unknown): string | undefined {
  return (obj as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
}

function desiredReplicasOf(desired: ApplyObject): unknown {
  const spec = (desired as { spec?: { replicas?: unknown } }).spec;
  return spec?.replicas;
}
