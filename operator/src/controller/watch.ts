/**
 * One watch connection to the API server, as a stream of events: the transport the informer's
 * cache reconnects and relists around. Newline-separated JSON events arrive as `callback(type,
 * object)`; the end of the stream, a refusal or a network error arrives once as `done(err)`.
 */
import { createInterface } from "node:readline";
import type { KubeClient } from "./kube-client.ts";

export type WatchCallback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;
export type WatchDone = (err: unknown) => void;

export interface WatchTransport {
  /**
   * Starts a watch of `path` from `query.resourceVersion`. Resolves with a controller that ends
   * it; `done` is called exactly once, with null when the server ended the stream.
   */
  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController>;
}

/** How long a watch may go without a byte before it counts as dead (the server sends nothing on a quiet resource). */
export const WATCH_INACTIVITY_MS = 30_000;

/** The error a watch ends with after `WATCH_INACTIVITY_MS` of silence: reconnect from the last resourceVersion at once. */
export class WatchTimeoutError extends Error {
  override readonly name = "TimeoutError";
  constructor(ms: number) {
    super(`no data on the watch for ${ms} ms`);
  }
}

/** A watch over the operator's KubeClient (its TLS agent and credentials). */
export class HttpWatch implements WatchTransport {
  readonly #client: KubeClient;
  readonly #inactivityMs: number;

  constructor(client: KubeClient, options: { inactivityMs?: number } = {}) {
    this.#client = client;
    this.#inactivityMs = options.inactivityMs ?? WATCH_INACTIVITY_MS;
  }

  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: WatchDone,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      controller.abort();
      done(err);
    };
    const idle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        finish(new WatchTimeoutError(this.#inactivityMs));
      }, this.#inactivityMs);
      timer.unref();
    };
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params[k] = String(v);
    idle();
    try {
      const response = await this.#client.openWatch(path, params, controller.signal);
      idle();
      response.on("data", idle);
      response.on("error", finish);
      const lines = createInterface({ input: response, crlfDelay: Infinity });
      // readline re-emits the stream's errors (a reset connection, our own abort): without this
      // listener they would be uncaught.
      lines.on("error", finish);
      lines.on("line", (line) => {
        if (finished || line === "") return;
        let event: { type?: unknown; object?: unknown };
        try {
          event = JSON.parse(line) as { type?: unknown; object?: unknown };
        } catch {
          finish(new Error(`watch ${path}: the server sent a line that is not JSON: ${line.slice(0, 200)}`));
          return;
        }
        callback(String(event.type), event.object, event);
      });
      lines.on("close", () => {
        finish(null);
      });
    } catch (err) {
      finish(err);
    }
    return controller;
  }
}
