/**
 * A cache of one collection kept current by list, then watch from the list's resourceVersion:
 * reconnects from the last resourceVersion when a watch ends, relists after 410 Gone, and reports
 * any other failure to its error handlers and stops (the informer's shard restarts it with
 * back-off). The same contract as client-node's ListWatch, which the informer used before; ours
 * lets each object be reduced (`transform`) before it is stored, and loads no client library.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import type { WatchTransport } from "./watch.ts";

export type CacheEvent = "add" | "update" | "delete";

const BASE_RECONNECT_DELAY_MS = 1_000;
const MAX_RECONNECT_DELAY_MS = 30_000;

export interface ListWatchOptions<T extends KubernetesObject> {
  path: string;
  transport: WatchTransport;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string | undefined;
  /** Reduces an object before it is cached and handed to handlers (e.g. drops managedFields). */
  transform?: ((obj: T) => T) | undefined;
}

export class ListWatch<T extends KubernetesObject> {
  readonly #o: ListWatchOptions<T>;
  /** namespace ("" for cluster-scoped) → name → object. */
  #objects = new Map<string, Map<string, T>>();
  #resourceVersion = "";
  #stopped = false;
  /** Counts stops: a watch that connects after a stop (or a stop and a start) belongs to no one and is ended. */
  #epoch = 0;
  #request: AbortController | undefined;
  #reconnectDelayMs = 0;
  #hasConnected = false;
  readonly #handlers: Record<CacheEvent, ((obj: T) => void)[]> = { add: [], update: [], delete: [] };
  readonly #errorHandlers: ((err: unknown) => void)[] = [];

  constructor(options: ListWatchOptions<T>) {
    this.#o = options;
  }

  on(event: CacheEvent | "error", handler: (value: T) => void): void;
  on(event: "error", handler: (err: unknown) => void): void;
  on(event: CacheEvent | "error", handler: (value: never) => void): void {
    if (event === "error") this.#errorHandlers.push(handler as (err: unknown) => void);
    else this.#handlers[event].push(handler as (obj: T) => void);
  }

  /** Lists (unless a resourceVersion is known) and starts watching; resolves once the watch is requested. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#reconnectDelayMs = 0;
    this.#hasConnected = false;
    await this.#done(null);
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.#epoch += 1;
    this.#abort();
    return Promise.resolve();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(namespace ?? "")?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace) return [...(this.#objects.get(namespace)?.values() ?? [])];
    const all: T[] = [];
    for (const objects of this.#objects.values()) all.push(...objects.values());
    return all;
  }

  latestResourceVersion(): string {
    return this.#resourceVersion;
  }

  #abort(): void {
    this.#request?.abort();
    this.#request = undefined;
  }

  async #done(err: unknown): Promise<void> {
    this.#abort();
    const code = statusCode(err);
    if (code === 410) {
      this.#resourceVersion = "";
    } else if (err && (err as { name?: unknown }).name === "TimeoutError") {
      // A quiet watch timed out on our side: reconnect from the last resourceVersion at once (the
      // timeout itself throttled us, and backing off would leave a quiet resource unwatched).
      this.#reconnectDelayMs = 0;
    } else if (err) {
      for (const handler of this.#errorHandlers) handler(err);
      return;
    }
    if (this.#stopped) return;
    if (!this.#resourceVersion) {
      let list: KubernetesListObject<T>;
      try {
        list = await this.#o.list();
      } catch (listErr) {
        for (const handler of this.#errorHandlers) handler(listErr);
        return;
      }
      if (this.#stopped) return;
      this.#replace(list.items);
      this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    }
    if (this.#reconnectDelayMs > 0 && this.#hasConnected) await sleep(this.#reconnectDelayMs);
    if (this.#stopped) return;
    if (this.#hasConnected) {
      this.#reconnectDelayMs = Math.min(
        this.#reconnectDelayMs > 0 ? this.#reconnectDelayMs * 2 : BASE_RECONNECT_DELAY_MS,
        MAX_RECONNECT_DELAY_MS,
      );
    }
    this.#hasConnected = true;
    const query: Record<string, string> = { resourceVersion: this.#resourceVersion, allowWatchBookmarks: "true" };
    if (this.#o.labelSelector !== undefined) query["labelSelector"] = this.#o.labelSelector;
    const epoch = this.#epoch;
    const request = await this.#o.transport.watch(
      this.#o.path,
      query,
      (phase, obj) => {
        if (epoch === this.#epoch) this.#event(phase, obj);
      },
      (doneErr) => {
        if (epoch === this.#epoch) void this.#done(doneErr);
      },
    );
    // Stopped while the watch was connecting: end it, or it would stream (and hold a connection)
    // for nobody, and a later stop could not reach the watch that replaced it.
    if (epoch !== this.#epoch) request.abort();
    else this.#request = request;
  }

  #event(phase: string, raw: unknown): void {
    const obj = raw as T;
    switch (phase) {
      case "ERROR":
        // A 410 inside the stream: relist when the stream ends (the server ends it next).
        if (statusCode(raw) === 410) this.#resourceVersion = "";
        return;
      case "ADDED":
      case "MODIFIED":
        this.#upsert(this.#shape(obj));
        break;
      case "DELETED":
        this.#delete(this.#shape(obj));
        break;
      case "BOOKMARK":
        break;
      default:
        return;
    }
    this.#reconnectDelayMs = 0;
    this.#resourceVersion = obj.metadata?.resourceVersion ?? "";
  }

  #shape(obj: T): T {
    return this.#o.transform ? this.#o.transform(obj) : obj;
  }

  /** A relist: objects gone from the list are deleted, the rest added or updated. */
  #replace(items: readonly T[]): void {
    const shaped = items.map((obj) => this.#shape(obj));
    const listed = new Set(shaped.map((obj) => `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`));
    for (const [namespace, objects] of this.#objects) {
      for (const [name, obj] of objects) {
        if (!listed.has(`${namespace}/${name}`)) this.#delete(obj);
      }
    }
    for (const obj of shaped) this.#upsert(obj);
  }

  #upsert(obj: T): void {
    const namespace = obj.metadata?.namespace ?? "";
    const name = obj.metadata?.name ?? "";
    let objects = this.#objects.get(namespace);
    if (!objects) {
      objects = new Map<string, T>();
      this.#objects.set(namespace, objects);
    }
    const found = objects.get(name);
    if (found && found.metadata?.resourceVersion && found.metadata.resourceVersion === obj.metadata?.resourceVersion) {
      return;
    }
    objects.set(name, obj);
    for (const handler of this.#handlers[found ? "update" : "add"]) handler(obj);
  }

  #delete(obj: T): void {
    const namespace = obj.metadata?.namespace ?? "";
    const objects = this.#objects.get(namespace);
    if (!objects?.delete(obj.metadata?.name ?? "")) return;
    if (objects.size === 0) this.#objects.delete(namespace);
    for (const handler of this.#handlers.delete) handler(obj);
  }
}

export function statusCode(value: unknown): number | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { statusCode, code } = value as { statusCode?: unknown; code?: unknown };
  if (typeof statusCode === "number") return statusCode;
  return typeof code === "number" ? code : undefined;
}
