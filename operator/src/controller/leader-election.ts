import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { formatMicroTime, realClock, sleep, type Clock } from "./clock.ts";
import { ApiError, isConflict, isNotFound } from "./errors.ts";
import type { Health } from "./health.ts";
import type { KubeClient } from "./kube-client.ts";
import type { Logger } from "./log.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { Resources, apiVersionOf, collectionPath, objectPath } from "./resources.ts";

/** How many times a stopping leader tries to release its lease when its copy of it turns out stale. */
const RELEASE_ATTEMPTS = 3;

/** coordination.k8s.io/v1 LeaseSpec as JSON (times are MicroTime strings). */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Why leading stopped: the lease could not be renewed in time, or we released it on shutdown. */
export type StopReason = "lost" | "released";

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per replica; default hostname_uuid, like client-go. */
  identity?: string;
  /** How long a lease is valid after its last renewal, as judged by other replicas (default 15 s). */
  leaseDurationMs?: number;
  /** The leader gives up if it cannot renew for this long (default 10 s; must be below leaseDurationMs). */
  renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts (default 2 s). */
  retryPeriodMs?: number;
  /**
   * Called once leading starts; `signal` aborts when leading stops, for any reason. Return the
   * promise of the leader's work (e.g. `controller.run(signal)`): on shutdown the lease is released
   * only after it settles (bounded by the renew deadline), so the next leader never overlaps with
   * our in-flight reconciles.
   */
  onStartedLeading: (signal: AbortSignal) => Promise<void> | void;
  /**
   * Called once when leading stops. On "lost" the process should exit at once (non-zero) without
   * draining: another replica may already be leading, so finishing in-flight work would mean two
   * writers, and a fresh process with fresh caches is the simplest correct recovery.
   */
  onStoppedLeading: (reason: StopReason) => void;
  /** Called when the observed holder changes (including to ""), for logs. */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  log: Logger;
  metrics?: OperatorMetrics;
}

/**
 * Whether `identity` may take or keep the lease it observed. The expiry is judged on *our* clock,
 * from when we first saw the current record (`observedAtMs`), never from the renewTime written by
 * another machine, so clock skew between replicas cannot make a lease look expired early.
 */
export function mayAcquire(spec: LeaseSpec, identity: string, observedAtMs: number, nowMs: number): boolean {
  const holder = spec.holderIdentity ?? "";
  if (holder === "" || holder === identity) return true;
  const durationMs = (spec.leaseDurationSeconds ?? 0) * 1000;
  return observedAtMs + durationMs <= nowMs;
}

/** The spec we write to take or renew the lease: acquireTime and transitions carry over while we hold it. */
export function nextLeaseSpec(
  old: LeaseSpec | undefined,
  identity: string,
  leaseDurationMs: number,
  nowMs: number,
): LeaseSpec {
  const now = formatMicroTime(nowMs);
  const stillOurs = old?.holderIdentity === identity;
  return {
    holderIdentity: identity,
    leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
    acquireTime: stillOurs ? (old.acquireTime ?? now) : now,
    renewTime: now,
    leaseTransitions: (old?.leaseTransitions ?? 0) + (old && !stillOurs ? 1 : 0),
  };
}

/**
 * Lease-based leader election after client-go's leaderelection package: acquire or renew with
 * optimistic concurrency (the update carries the resourceVersion we read, so two candidates
 * racing for an expired lease cannot both win), renew every retry period, stop leading when
 * renewals fail for the renew deadline, and on shutdown release the lease (empty holder) so a
 * standby takes over at its next retry instead of waiting out the lease duration.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #o: Required<Omit<LeaderElectionOptions, "onNewLeader" | "metrics" | "identity">> &
    Pick<LeaderElectionOptions, "onNewLeader" | "metrics">;
  readonly #stop = new AbortController();
  #leading = false;
  #lease: Lease | undefined;
  /** The last record we saw (as JSON) and when we first saw it, on our clock. */
  #observedRaw = "";
  #observedAt = 0;
  #lastHolder: string | undefined;
  #lastContact = 0;
  #lastError = "";
  #running: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.identity = options.identity ?? `${hostname()}_${randomUUID()}`;
    this.#o = {
      ...options,
      clock: options.clock ?? realClock,
      leaseDurationMs: options.leaseDurationMs ?? 15_000,
      renewDeadlineMs: options.renewDeadlineMs ?? 10_000,
      retryPeriodMs: options.retryPeriodMs ?? 2_000,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.#o;
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
      throw new Error(
        `leader election needs leaseDuration > renewDeadline > retryPeriod > 0, got ${leaseDurationMs}/${renewDeadlineMs}/${retryPeriodMs} ms`,
      );
    }
  }

  isLeader(): boolean {
    return this.#leading;
  }

  /**
   * Campaigns until it leads, leads until the lease is lost or `stop` is called, then returns.
   * Calling it twice returns the same run.
   */
  run(): Promise<void> {
    this.#running ??= this.#campaign();
    return this.#running;
  }

  /**
   * Stops campaigning or leading: aborts the leader's signal, waits for the work returned by
   * `onStartedLeading` to settle (at most the renew deadline), releases the lease, and resolves
   * when `run` has returned.
   */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  /** Healthy while we reached the API server about the lease within two lease durations (leader or standby). */
  health(): Health {
    const role = this.#leading ? "leader" : "standby";
    if (this.#running === undefined) return { ok: false, message: "leader election not started" };
    const sinceMs = this.#o.clock.now() - this.#lastContact;
    if (this.#lastContact === 0 || sinceMs > 2 * this.#o.leaseDurationMs) {
      return {
        ok: false,
        message:
          this.#lastContact === 0
            ? `${role}: no answer yet about lease ${this.#leaseName()}: ${this.#lastError}`
            : `${role}: no answer about lease ${this.#leaseName()} for ${Math.round(sinceMs / 1000)}s: ${this.#lastError}`,
      };
    }
    return { ok: true, message: `${role} (holder: ${this.#lastHolder || "none"})` };
  }

  async #campaign(): Promise<void> {
    const { clock, retryPeriodMs, renewDeadlineMs, log } = this.#o;
    const stop = this.#stop.signal;
    log.info({ identity: this.identity, lease: this.#leaseName() }, "campaigning for leadership");
    while (!stop.aborted && !(await this.#tryAcquireOrRenew(stop))) {
      // Jitter (client-go's factor 1.2) keeps standbys from hitting the API server in lockstep.
      await sleep(clock, retryPeriodMs * (1 + Math.random() * 1.2), stop);
    }
    if (stop.aborted) return;

    const leading = new AbortController();
    this.#setLeading(true);
    log.info({ identity: this.identity, lease: this.#leaseName() }, "started leading");
    // Called through then(), so a callback that throws is a logged failure, not a dead renew loop.
    const work = Promise.resolve()
      .then(() => this.#o.onStartedLeading(leading.signal))
      .catch((err: unknown) => {
        log.error({ err: err instanceof Error ? err.message : String(err) }, "the leader's work failed");
      });

    let lastRenew = clock.now();
    let reason: StopReason = "released";
    while (!stop.aborted) {
      await sleep(clock, retryPeriodMs, stop);
      if (stop.aborted) break;
      const remaining = renewDeadlineMs - (clock.now() - lastRenew);
      const deadline = AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, remaining))]);
      if (await this.#tryAcquireOrRenew(deadline)) {
        lastRenew = clock.now();
      } else if (clock.now() - lastRenew >= renewDeadlineMs || !this.#holdsObserved()) {
        reason = "lost";
        break;
      }
    }

    this.#setLeading(false);
    leading.abort();
    if (reason === "released") {
      // The lease stays ours (unrenewed) while the work drains; then hand it over at once.
      const drained = new AbortController();
      await Promise.race([work, sleep(clock, renewDeadlineMs, drained.signal)]);
      drained.abort();
      await this.#release();
    }
    log.warn({ identity: this.identity, lease: this.#leaseName(), reason }, "stopped leading");
    this.#o.onStoppedLeading(reason);
  }

  /** One attempt; true if we hold the lease afterwards. Never throws: failures are logged and retried. */
  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, clock, namespace, name, leaseDurationMs, log } = this.#o;
    try {
      let lease: Lease | undefined;
      try {
        lease = await client.get<Lease>(objectPath(Resources.Lease, namespace, name), signal);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      this.#lastContact = clock.now();
      if (lease === undefined) {
        const created = await client.request<Lease>("create", collectionPath(Resources.Lease, namespace), {
          body: {
            apiVersion: apiVersionOf(Resources.Lease),
            kind: "Lease",
            metadata: { name, namespace },
            spec: nextLeaseSpec(undefined, this.identity, leaseDurationMs, clock.now()),
          },
          signal,
        });
        this.#observe(created);
        return true;
      }
      this.#observe(lease);
      const spec = lease.spec ?? {};
      if (!this.#holdsObserved() && !mayAcquire(spec, this.identity, this.#observedAt, clock.now())) return false;
      // The update carries the resourceVersion we read: if anyone wrote in between, it fails with 409.
      const updated = await client.request<Lease>("update", objectPath(Resources.Lease, namespace, name), {
        body: { ...lease, spec: nextLeaseSpec(spec, this.identity, leaseDurationMs, clock.now()) },
        signal,
      });
      this.#observe(updated);
      return true;
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      const conflict = err instanceof ApiError && (err.statusCode === 409 || err.statusCode === 404);
      // A lost race (409) is routine for a standby; anything else is worth a warning.
      if (conflict) log.debug({ err: this.#lastError }, "lease changed under us");
      else log.warn({ err: this.#lastError, leading: this.#leading }, "acquire/renew of the lease failed");
      if (conflict) this.#lastContact = clock.now();
      return false;
    }
  }

  /**
   * Gives the lease up: empty holder and a 1 s duration, so a standby takes it at its next retry.
   * The update carries the resourceVersion we last saw; a renew that the shutdown aborted may still
   * have reached the API server, making our copy stale (409): then the lease is read again and, if
   * it is still ours, released from that copy (seen in CI: without it the standby waited for expiry).
   */
  async #release(): Promise<void> {
    const { client, clock, namespace, name, log } = this.#o;
    const path = objectPath(Resources.Lease, namespace, name);
    const deadline = AbortSignal.timeout(this.#o.renewDeadlineMs);
    let lease = this.#lease;
    for (let attempt = 1; lease?.spec?.holderIdentity === this.identity; attempt++) {
      try {
        const now = formatMicroTime(clock.now());
        await client.request<Lease>("update", path, {
          body: {
            ...lease,
            spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
          },
          signal: deadline,
        });
        log.info({ lease: this.#leaseName() }, "released the lease");
        return;
      } catch (err) {
        // A failed read is reported below, with the error that made us read.
        const fresh =
          isConflict(err) && attempt < RELEASE_ATTEMPTS
            ? await client.get<Lease>(path, deadline).catch(() => undefined)
            : undefined;
        if (fresh) {
          lease = fresh;
          continue;
        }
        // Not fatal: the standby takes over when the lease expires instead of at once.
        log.warn({ err: err instanceof Error ? err.message : String(err) }, "releasing the lease failed");
        return;
      }
    }
  }

  #observe(lease: Lease): void {
    this.#lease = lease;
    const raw = JSON.stringify(lease.spec ?? {});
    if (raw !== this.#observedRaw) {
      this.#observedRaw = raw;
      this.#observedAt = this.#o.clock.now();
    }
    const holder = lease.spec?.holderIdentity ?? "";
    if (holder !== this.#lastHolder) {
      this.#lastHolder = holder;
      this.#o.log.info({ holder, lease: this.#leaseName() }, "lease holder changed");
      this.#o.onNewLeader?.(holder);
    }
  }

  #holdsObserved(): boolean {
    return this.#lease?.spec?.holderIdentity === this.identity;
  }

  #setLeading(leading: boolean): void {
    this.#leading = leading;
    this.#o.metrics?.leader.set({ lease: this.#leaseName() }, leading ? 1 : 0);
    this.#o.metrics?.leaderTransitions.inc({ lease: this.#leaseName(), transition: leading ? "started" : "stopped" });
  }

  #leaseName(): string {
    return `${this.#o.namespace}/${this.#o.name}`;
  }
}
