import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { realClock, type Clock } from "./clock.ts";
import type { Health } from "./health.ts";
import type { KubeClient } from "./kube-client.ts";
import { ListWatch, statusCode } from "./list-watch.ts";
import type { Logger } from "./log.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { apiVersionOf, collectionPath, type Resource } from "./resources.ts";
import { HttpWatch, type WatchCallback, type WatchDone, type WatchTransport } from "./watch.ts";

export type InformerEvent = "add" | "update" | "delete";

/** Informer handlers only compute keys and add them to a queue: no I/O, no decisions, no mutation. */
export type InformerHandler<T> = (obj: T, event: InformerEvent) => void;

/** The label every child we create carries; child informers watch only these objects. */
export const ManagedByLabel = { key: "app.kubernetes.io/managed-by", value: "maas-operator" } as const;
export const managedBySelector = `${ManagedByLabel.key}=${ManagedByLabel.value}`;

export interface InformerOptions<T extends KubernetesObject = KubernetesObject> {
  client: KubeClient;
  resource: Resource;
  /** Namespaces to watch, one list+watch each; undefined or empty: all namespaces with one watch. */
  namespaces?: readonly string[] | undefined;
  /** Server-side label selector, e.g. `managedBySelector`: the cache holds only what matches. */
  labelSelector?: string | undefined;
  log: Logger;
  metrics?: OperatorMetrics | undefined;
  clock?: Clock | undefined;
  /** Restart back-off after a failed list or watch: base doubling to max (default 1 s to 30 s). */
  restartBackoffMs?: { base: number; max: number } | undefined;
  /**
   * A watch that showed no sign of life (no event, no reconnect) for this long is restarted
   * (default 120 s). client-node's watch reconnects after 30 s of silence, so a live one never waits this long.
   */
  staleAfterMs?: number | undefined;
  /** A shard failing continuously for this long makes the informer unhealthy in /readyz (default 30 s). */
  unhealthyAfterMs?: number | undefined;
  /** Deep-freezes cached objects, so a handler or reconciler that mutates one throws (tests turn it on). */
  freeze?: boolean | undefined;
  /** Makes the watch transport; tests pass a fake. Default: a watch over the client's connection. */
  watchFactory?: ((client: KubeClient) => WatchTransport) | undefined;
  /**
   * Reduces each object before it is cached (and handed to handlers): drop what no reader needs,
   * such as managedFields, so the cache holds one small copy per object.
   */
  transform?: ((obj: T) => T) | undefined;
}

/**
 * A typed, read-only cache of one resource kind, kept current by list+watch (client-node's
 * ListWatch), with the parts client-node leaves to the caller: `hasSynced`, restart with back-off
 * after a failed watch or list (client-node's ListWatch stops for good after an error), relist
 * after 410 Gone (client-node does this; we count it), a watchdog for a watch that went quiet,
 * and a health report for /readyz. A watch never dies silently: each failure is logged, counted
 * in maas_operator_watch_restarts_total and, while it lasts, shown in /readyz.
 *
 * Objects are the API server's JSON as-is: timestamps are RFC 3339 strings even where
 * client-node's model types say `Date`.
 */
export class Informer<T extends KubernetesObject> {
  readonly resource: Resource;
  readonly #shards: Map<string, Shard<T>>;
  readonly #handlers: InformerHandler<T>[] = [];

  constructor(options: InformerOptions<T>) {
    this.resource = options.resource;
    const namespaces = options.namespaces?.length ? [...new Set(options.namespaces)] : [undefined];
    const emit = (obj: T, event: InformerEvent): void => {
      for (const handler of this.#handlers) handler(obj, event);
    };
    this.#shards = new Map(namespaces.map((ns) => [ns ?? "", new Shard<T>(options, ns, emit)]));
  }

  /** Registers a handler for adds, updates and deletes. Register before `start`, or the initial list is missed. */
  onEvent(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Starts listing and watching in every namespace; returns at once (see `waitForSync`). */
  start(): void {
    for (const shard of this.#shards.values()) shard.start();
  }

  /** Stops all watches and pending restarts. The cache keeps its last contents. */
  async stop(): Promise<void> {
    await Promise.all([...this.#shards.values()].map((shard) => shard.stop()));
  }

  /** True once every namespace has been listed at least once (it stays true across restarts, like client-go). */
  hasSynced(): boolean {
    return [...this.#shards.values()].every((shard) => shard.synced);
  }

  /** Resolves true when synced, false if `signal` aborts first. */
  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    await Promise.all([...this.#shards.values()].map((shard) => shard.waitForSync(signal)));
    return this.hasSynced();
  }

  /**
   * The cached object, or undefined. Never mutate it: it is shared with the cache and every other
   * reader, so a change would corrupt what the next reconcile sees as the server's state (and
   * would be silently overwritten by the next watch event). Copy it (structuredClone) before building on it.
   */
  get(namespace: string, name: string): T | undefined {
    return this.#shardFor(namespace)?.listWatch.get(name, namespace);
  }

  /**
   * Cached objects in `namespace` (all watched namespaces if undefined) whose labels contain every
   * pair of `matchLabels`. The same no-mutation rule as `get` applies.
   */
  list(namespace?: string, matchLabels?: Readonly<Record<string, string>>): T[] {
    const shards = namespace === undefined ? [...this.#shards.values()] : [this.#shardFor(namespace)];
    const objects: T[] = [];
    for (const shard of shards) {
      if (!shard) continue;
      for (const obj of shard.listWatch.list(namespace)) {
        if (matchesLabels(obj, matchLabels)) objects.push(obj);
      }
    }
    return objects;
  }

  /** Healthy when synced and no namespace's watch has been failing for longer than `unhealthyAfterMs`. */
  health(): Health {
    const problems = [...this.#shards.values()].map((shard) => shard.problem()).filter((p) => p !== undefined);
    if (problems.length === 0) return { ok: true, message: `${this.resource.plural}: watching` };
    return { ok: false, message: `${this.resource.plural}: ${problems.join("; ")}` };
  }

  #shardFor(namespace: string): Shard<T> | undefined {
    return this.#shards.get(namespace) ?? this.#shards.get("");
  }
}

/** True if `obj` carries every label in `matchLabels` (an absent or empty selector matches everything). */
export function matchesLabels(obj: KubernetesObject, matchLabels?: Readonly<Record<string, string>>): boolean {
  if (!matchLabels) return true;
  const labels = obj.metadata?.labels ?? {};
  return Object.entries(matchLabels).every(([key, value]) => labels[key] === value);
}

/** One list+watch (one namespace, or all of them) and its restart machinery. */
class Shard<T extends KubernetesObject> {
  readonly listWatch: ListWatch<T>;
  synced = false;

  readonly #what: string;
  readonly #plural: string;
  readonly #log: Logger;
  readonly #metrics: OperatorMetrics | undefined;
  readonly #clock: Clock;
  readonly #backoff: { base: number; max: number };
  readonly #staleAfterMs: number;
  readonly #unhealthyAfterMs: number;
  readonly #transport: ObservedWatch;
  readonly #syncWaiters: (() => void)[] = [];

  #stopped = true;
  #lists = 0;
  /** Lists under way: a slow list is not a quiet watch (the request has its own timeout). */
  #listsInFlight = 0;
  #failures = 0;
  #failingSince: number | undefined;
  #lastError = "";
  #lastAlive = 0;
  #cancelRestart: (() => void) | undefined;
  #cancelWatchdog: (() => void) | undefined;

  constructor(options: InformerOptions<T>, namespace: string | undefined, emit: InformerHandler<T>) {
    const { client, resource } = options;
    this.#what = `${resource.plural} in ${namespace === undefined ? "all namespaces" : `namespace ${namespace}`}`;
    this.#plural = resource.plural;
    this.#log = options.log.child({ resource: resource.plural, namespace: namespace ?? "*" });
    this.#metrics = options.metrics;
    this.#clock = options.clock ?? realClock;
    this.#backoff = options.restartBackoffMs ?? { base: 1_000, max: 30_000 };
    this.#staleAfterMs = options.staleAfterMs ?? 120_000;
    this.#unhealthyAfterMs = options.unhealthyAfterMs ?? 30_000;
    const path = collectionPath(resource, namespace);
    const labelSelector = options.labelSelector;
    const inner = (options.watchFactory ?? ((c: KubeClient) => new HttpWatch(c)))(client);
    this.#transport = new ObservedWatch(inner, {
      connected: () => {
        this.#alive();
      },
      event: () => {
        this.#alive();
      },
      expired: () => {
        this.#log.info({ reason: "expired" }, "watch resourceVersion expired (410 Gone), relisting");
        this.#metrics?.watchRestarts.inc({ resource: this.#plural, reason: "expired" });
      },
    });
    const apiVersion = apiVersionOf(resource);
    const listFn = async (): Promise<KubernetesListObject<T>> => {
      this.#listsInFlight += 1;
      let list: KubernetesListObject<T>;
      try {
        list = await client.list<KubernetesListObject<T>>(path, labelSelector);
      } finally {
        this.#listsInFlight -= 1;
      }
      // List responses leave apiVersion and kind off their items (watch events carry them): stamp
      // them, so an object looks the same in the cache whichever way it arrived.
      for (const item of list.items as (T & { apiVersion?: string; kind?: string })[]) {
        item.apiVersion ??= apiVersion;
        item.kind ??= resource.kind;
      }
      this.#lists += 1;
      this.#alive();
      return list;
    };
    this.listWatch = new ListWatch<T>({
      path,
      transport: this.#transport,
      list: listFn,
      labelSelector,
      transform: options.transform,
    });
    const freeze = options.freeze ?? false;
    const forward = (event: InformerEvent) => (obj: T) => {
      if (freeze) deepFreeze(obj);
      emit(obj, event);
    };
    this.listWatch.on("add", forward("add"));
    this.listWatch.on("update", forward("update"));
    this.listWatch.on("delete", forward("delete"));
    this.listWatch.on("error", (err: unknown) => {
      this.#failed(err);
    });
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#lastAlive = this.#clock.now();
    this.#run();
    this.#armWatchdog();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelRestart?.();
    this.#cancelWatchdog?.();
    this.#transport.retire();
    await this.listWatch.stop();
    for (const resolve of this.#syncWaiters.splice(0)) resolve();
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push(resolve);
      signal?.addEventListener(
        "abort",
        () => {
          resolve();
        },
        { once: true },
      );
    });
  }

  /** Why this shard is unhealthy, or undefined. */
  problem(): string | undefined {
    if (!this.synced) {
      return this.#lastError ? `${this.#what} not synced yet: ${this.#lastError}` : `${this.#what} not synced yet`;
    }
    if (this.#failingSince !== undefined && this.#clock.now() - this.#failingSince >= this.#unhealthyAfterMs) {
      const seconds = Math.round((this.#clock.now() - this.#failingSince) / 1000);
      return `watch of ${this.#what} failing for ${seconds}s: ${this.#lastError}`;
    }
    return undefined;
  }

  /** One attempt: list if needed, then watch. ListWatch reports failures through its error callback. */
  #run(): void {
    const listsBefore = this.#lists;
    this.listWatch.start().then(
      () => {
        if (this.#stopped) return;
        if (this.#lists > listsBefore && !this.synced) {
          this.synced = true;
          this.#metrics?.informerSynced.set({ resource: this.#plural }, 1);
          this.#log.info({ objects: this.listWatch.list().length }, "informer synced");
          for (const resolve of this.#syncWaiters.splice(0)) resolve();
        }
      },
      (err: unknown) => {
        this.#failed(err);
      },
    );
  }

  /** The list or watch failed and ListWatch stopped: log, count, and restart after back-off. */
  #failed(err: unknown): void {
    if (this.#stopped) return;
    const message = err instanceof Error ? err.message : String(err);
    this.#failingSince ??= this.#clock.now();
    this.#lastError = message;
    const delay = Math.min(this.#backoff.base * 2 ** this.#failures, this.#backoff.max);
    this.#failures += 1;
    this.#log.warn(
      { err: message, retryInMs: delay, failures: this.#failures },
      `watch of ${this.#what} failed; restarting`,
    );
    this.#metrics?.watchRestarts.inc({ resource: this.#plural, reason: "error" });
    this.#cancelRestart?.();
    this.#cancelRestart = this.#clock.schedule(() => {
      this.#cancelRestart = undefined;
      if (!this.#stopped) this.#run();
    }, delay);
  }

  #alive(): void {
    this.#lastAlive = this.#clock.now();
    if (this.#failingSince !== undefined) {
      this.#log.info({ failures: this.#failures }, `watch of ${this.#what} recovered`);
    }
    this.#failures = 0;
    this.#failingSince = undefined;
    this.#lastError = "";
  }

  /** Restarts a watch that has shown no sign of life for `staleAfterMs`, in case a connection hangs undetected. */
  #armWatchdog(): void {
    this.#cancelWatchdog = this.#clock.schedule(
      () => {
        if (this.#stopped) return;
        const quietMs = this.#clock.now() - this.#lastAlive;
        // Only a watch that went quiet: not during a back-off wait, and not while a list is under
        // way (restarting then would start a second list+watch chain beside the first).
        if (quietMs >= this.#staleAfterMs && this.#cancelRestart === undefined && this.#listsInFlight === 0) {
          this.#log.warn({ quietMs }, `watch of ${this.#what} went quiet; restarting it`);
          this.#metrics?.watchRestarts.inc({ resource: this.#plural, reason: "stale" });
          this.#lastAlive = this.#clock.now();
          this.#transport.retire();
          void this.listWatch.stop().then(() => {
            if (!this.#stopped) this.#run();
          });
        }
        this.#armWatchdog();
      },
      Math.max(1_000, this.#staleAfterMs / 4),
    );
  }
}

interface WatchHooks {
  connected(): void;
  event(): void;
  expired(): void;
}

/**
 * A Watch that reports what happens on the wire (connected, an event, 410 Gone) and can retire its
 * current connection: after `retire`, the old connection's end is not passed to ListWatch, so a
 * deliberate restart never looks like a failure and never starts a second watch.
 */
class ObservedWatch implements WatchTransport {
  readonly #inner: WatchTransport;
  readonly #hooks: WatchHooks;
  #generation = 0;

  constructor(inner: WatchTransport, hooks: WatchHooks) {
    this.#inner = inner;
    this.#hooks = hooks;
  }

  retire(): void {
    this.#generation += 1;
  }

  async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
    const generation = this.#generation;
    let finished = false;
    let controller: AbortController;
    try {
      controller = await this.#inner.watch(
        path,
        queryParams,
        (phase: string, apiObj: unknown, watchObj?: unknown) => {
          if (generation !== this.#generation) return;
          if (phase === "ERROR" && statusCode(apiObj) === 410) this.#hooks.expired();
          else this.#hooks.event();
          callback(phase, apiObj, watchObj);
        },
        (err: unknown) => {
          finished = true;
          if (generation !== this.#generation) return;
          if (statusCode(err) === 410) this.#hooks.expired();
          done(err);
        },
      );
    } catch (err) {
      // Thrown before any connection (e.g. credentials unreadable). Report it as the end of this
      // watch, so it takes the error path (log, count, restart) instead of becoming an unhandled
      // rejection inside ListWatch's own reconnect, which nobody awaits.
      if (!finished && generation === this.#generation) done(err);
      return new AbortController();
    }
    if (!finished && generation === this.#generation) this.#hooks.connected();
    return controller;
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
}
