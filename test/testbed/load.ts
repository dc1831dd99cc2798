/**
 * An open-loop load generator for the test bed: sends predict requests at a rate that follows a
 * function of time, spread round-robin over a ModelDeployment's Ready pods the way its Service would
 * (there is no kube-proxy here: pods are reached on the local ports the node agent gave them).
 * Bounded: at most `maxInFlight` requests are outstanding; a request due beyond that is counted as
 * dropped, never queued, so a slow server cannot make the generator grow without bound.
 */
import type { Testbed } from "./index.ts";

export interface LoadOptions {
  tb: Testbed;
  namespace: string;
  /** The ModelDeployment's name (pods carry maas.dev/deployment=<name>). */
  deployment: string;
  /** Name in /v1/models/{name}:predict. */
  servedName: string;
  /** JSON request body. */
  body: string;
  /** Requests per second `elapsedMs` after start. */
  rate: (elapsedMs: number) => number;
  maxInFlight?: number;
  /** How often the Ready pods are looked up (default 500 ms). */
  refreshMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

export interface LoadStats {
  sent: number;
  /** Answers by HTTP status code. */
  codes: Record<string, number>;
  /** Requests that got no answer (connection refused or reset, timeout). */
  failed: number;
  /** Requests not sent: no Ready pod, or maxInFlight reached. */
  dropped: number;
}

export class LoadGenerator {
  readonly #o: LoadOptions;
  readonly #stats: LoadStats = { sent: 0, codes: {}, failed: 0, dropped: 0 };
  readonly #inFlight = new Set<Promise<void>>();
  #ports: number[] = [];
  #next = 0;
  #credit = 0;
  #started = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #refresher: NodeJS.Timeout | undefined;

  constructor(options: LoadOptions) {
    this.#o = options;
  }

  get stats(): LoadStats {
    return structuredClone(this.#stats);
  }

  /** Ready pods the generator currently sends to. */
  get endpoints(): number {
    return this.#ports.length;
  }

  setRate(rate: (elapsedMs: number) => number): void {
    this.#o.rate = rate;
  }

  async start(): Promise<void> {
    await this.#refresh();
    this.#started = this.#last = performance.now();
    this.#timer = setInterval(() => {
      this.#tick();
    }, 10);
    this.#refresher = setInterval(() => {
      void this.#refresh();
    }, this.#o.refreshMs ?? 500);
  }

  /** Stops sending and waits for the requests under way. */
  async stop(): Promise<LoadStats> {
    clearInterval(this.#timer);
    clearInterval(this.#refresher);
    await Promise.all(this.#inFlight);
    return this.stats;
  }

  #tick(): void {
    const now = performance.now();
    this.#credit += (Math.max(0, this.#o.rate(now - this.#started)) * (now - this.#last)) / 1000;
    this.#last = now;
    const max = this.#o.maxInFlight ?? 256;
    for (; this.#credit >= 1; this.#credit -= 1) {
      if (this.#ports.length === 0 || this.#inFlight.size >= max) {
        this.#stats.dropped += 1;
        continue;
      }
      const port = this.#ports[this.#next++ % this.#ports.length]!;
      const request = this.#send(port).finally(() => this.#inFlight.delete(request));
      this.#inFlight.add(request);
    }
  }

  async #send(port: number): Promise<void> {
    this.#stats.sent += 1;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/v1/models/${this.#o.servedName}:predict`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: this.#o.body,
        signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000),
      });
      await res.arrayBuffer();
      this.#stats.codes[res.status] = (this.#stats.codes[res.status] ?? 0) + 1;
    } catch {
      this.#stats.failed += 1;
    }
  }

  async #refresh(): Promise<void> {
    const { tb, namespace, deployment } = this.#o;
    try {
      const pods = await tb.core.listNamespacedPod({ namespace, labelSelector: `maas.dev/deployment=${deployment}` });
      this.#ports = pods.items
        .filter(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
        )
        .map((p) => tb.podPort(namespace, p.metadata!.name!, 8080))
        .filter((port): port is number => port !== undefined);
    } catch {
      // Keep the last endpoints; the next refresh tries again.
    }
  }
}
