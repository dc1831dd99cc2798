import { formatMicroTime, realClock, type Clock } from "./clock.ts";
import { ApiError } from "./errors.ts";
import { ContentTypes, type KubeClient } from "./kube-client.ts";
import type { Logger } from "./log.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { Resources, apiVersionOf, collectionPath, objectPath } from "./resources.ts";

export const EventTypes = { normal: "Normal", warning: "Warning" } as const;
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

/** The object an Event is about. */
export interface EventRegarding {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string | undefined;
}

export interface EventInput {
  readonly regarding: EventRegarding;
  readonly type: EventType;
  /** CamelCase, machine-readable: "Created", "ModelFetchFailed". */
  readonly reason: string;
  /** CamelCase, what we did or tried: "Reconcile", "Apply". */
  readonly action: string;
  /** For humans, capitalised, past tense, naming the kind: "Created Deployment ml/sentiment". */
  readonly note: string;
}

const camelCase = /^[A-Z][A-Za-z0-9]*$/;

/** events.k8s.io/v1 refuses a note longer than 1 kB (counted in bytes). */
const maxNoteBytes = 1024;

/**
 * `note` cut to what the API accepts, marked with "…" where it was cut: notes quote messages of
 * unbounded length (the API server's refusals, the scheduler's reasons), and a refused Event must
 * not fail the reconcile that reports them.
 */
export function fitNote(note: string): string {
  if (Buffer.byteLength(note) <= maxNoteBytes) return note;
  // "…" takes 3 bytes; a cut inside a multi-byte character decodes to U+FFFD, which is dropped.
  const cut = Buffer.from(note)
    .subarray(0, maxNoteBytes - 3)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return `${cut}…`;
}

/** Throws an error naming the problem if `input` breaks the Event conventions (a programming error). */
export function validateEvent(input: EventInput): void {
  if (!camelCase.test(input.reason))
    throw new Error(`event reason must be CamelCase, got ${JSON.stringify(input.reason)}`);
  if (!camelCase.test(input.action))
    throw new Error(`event action must be CamelCase, got ${JSON.stringify(input.action)}`);
  if (!/^[A-Z]/.test(input.note))
    throw new Error(`event note must start with a capital letter, got ${JSON.stringify(input.note)}`);
  const bytes = Buffer.byteLength(input.note);
  if (bytes > maxNoteBytes) throw new Error(`event note is ${bytes} bytes; the API allows ${maxNoteBytes}`);
  if (!input.regarding.name || !input.regarding.kind) throw new Error("event regarding needs a kind and a name");
}

/** What to do with an Event: create a new one, or count a repeat into an existing one. */
export type EventDecision =
  | { readonly kind: "create"; readonly name: string; readonly eventTimeMs: number }
  | { readonly kind: "bump"; readonly name: string; readonly count: number; readonly lastObservedMs: number };

interface Series {
  name: string;
  count: number;
  lastObservedMs: number;
}

/**
 * Decides create-or-bump for Events, like client-go's events library: the same Event (same object,
 * type, reason, action and note) seen again within `windowMs` of its last occurrence bumps the
 * series count of the existing Event instead of creating another object. Pure apart from the clock.
 */
export class EventAggregator {
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #series = new Map<string, Series>();
  #sequence = 0;

  constructor(clock: Clock = realClock, windowMs = 6 * 60_000, maxEntries = 4096) {
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#maxEntries = maxEntries;
  }

  decide(input: EventInput): EventDecision {
    const key = aggregationKey(input);
    const now = this.#clock.now();
    const series = this.#series.get(key);
    if (series && now - series.lastObservedMs < this.#windowMs) {
      series.count += 1;
      series.lastObservedMs = now;
      return { kind: "bump", name: series.name, count: series.count, lastObservedMs: now };
    }
    // Unique and time-ordered, like client-go's "<name>.<hex nanoseconds>".
    this.#sequence = (this.#sequence + 1) % 1_000_000;
    const name = `${input.regarding.name}.${(BigInt(now) * 1_000_000n + BigInt(this.#sequence)).toString(16)}`;
    this.#series.delete(key);
    this.#series.set(key, { name, count: 1, lastObservedMs: now });
    if (this.#series.size > this.#maxEntries) {
      // Map keeps insertion order: the first key is the least recently started series.
      const oldest = this.#series.keys().next().value;
      if (oldest !== undefined) this.#series.delete(oldest);
    }
    return { kind: "create", name, eventTimeMs: now };
  }

  /** Forgets the series of `input` (its Event vanished), so the next occurrence creates a new one. */
  reset(input: EventInput): void {
    this.#series.delete(aggregationKey(input));
  }
}

function aggregationKey(input: EventInput): string {
  const { regarding } = input;
  return JSON.stringify([
    regarding.namespace,
    regarding.kind,
    regarding.name,
    regarding.uid ?? "",
    input.type,
    input.reason,
    input.action,
    input.note,
  ]);
}

export interface EventRecorderOptions {
  client: KubeClient;
  /** events.k8s.io reportingController, e.g. "maas.dev/maas-operator". */
  controller: string;
  /** This replica, e.g. the leader election identity. */
  instance: string;
  log: Logger;
  metrics?: OperatorMetrics;
  clock?: Clock;
  /** Events `emit` lets wait for the API server at once (default 1,000, client-go's queue length). */
  maxBackground?: number;
  /** Emitted Events written at a time (default 1: one writer, as client-go's broadcaster has). */
  writers?: number;
}

const DEFAULT_MAX_BACKGROUND = 1000;
const DEFAULT_WRITERS = 1;

/** `event` with its note cut to fit; throws if it breaks the conventions (a programming error). */
function prepare(event: EventInput): EventInput {
  const input = { ...event, note: fitNote(event.note) };
  validateEvent(input);
  return input;
}

/**
 * Records events.k8s.io/v1 Events (shown by `kubectl describe` and `kubectl events`). Repeats
 * bump `series.count` on the existing Event. Recording is best-effort: a failure is logged and
 * counted, never thrown, so an Event can't fail a reconcile.
 */
export class EventRecorder {
  readonly #o: EventRecorderOptions;
  readonly #clock: Clock;
  readonly #aggregator: EventAggregator;
  /** Per-series chain, so a bump never overtakes the create of the same Event. */
  readonly #inFlight = new Map<string, Promise<void>>();
  /** Emitted Events not yet handed to a writer, oldest first. */
  readonly #queue: EventInput[] = [];
  /** Writers busy with an emitted Event. */
  #writing = 0;
  /** Resolved (and replaced) whenever the queue and the writers are both empty. */
  #idle: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(options: EventRecorderOptions) {
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#aggregator = new EventAggregator(this.#clock);
  }

  /**
   * Records `input`; resolves when the API server has it (or the failure has been logged).
   * Rejects only for an Event that breaks the conventions (see `validateEvent`): a programming error.
   * A note longer than the API allows is cut to fit (`fitNote`).
   */
  record(event: EventInput): Promise<void> {
    let input: EventInput;
    try {
      input = prepare(event);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return this.#record(input);
  }

  /**
   * Records `event` in the background, as client-go's broadcaster does: the caller (a reconcile)
   * does not wait for the API server, and the Events are written in the order emitted by
   * `writers` (default one) at a time, so a burst of reconciles does not put a burst of Event
   * writes beside its child applies at an API server that is already the bottleneck: in a burst
   * Events trail the objects they describe. At most `maxBackground` Events wait at once (queued or
   * being written); beyond that new ones are dropped, counted (`action="dropped"`) and logged.
   * Throws at once for an Event that breaks the conventions. `settled()` waits for the ones waiting.
   */
  emit(event: EventInput): void {
    const input = prepare(event);
    if (this.#queue.length + this.#writing >= (this.#o.maxBackground ?? DEFAULT_MAX_BACKGROUND)) {
      this.#o.metrics?.events.inc({ type: input.type, action: "dropped" });
      this.#o.log.warn(
        { object: `${input.regarding.namespace}/${input.regarding.name}`, reason: input.reason },
        "dropped an Event: too many are waiting for the API server",
      );
      return;
    }
    this.#queue.push(input);
    this.#drain();
  }

  /**
   * Resolves when every Event emitted so far has been written, or its failure logged. With
   * `withinMs` (shutdown: the lease waits for this), Events still queued after that long are
   * dropped, counted and logged, and it resolves without waiting for the writes in flight.
   */
  async settled(withinMs?: number): Promise<void> {
    if (this.#queue.length === 0 && this.#writing === 0) return;
    if (!this.#idle) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#idle = { promise, resolve };
    }
    if (withinMs === undefined) return this.#idle.promise;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(r, withinMs, "late")));
    const outcome = await Promise.race([this.#idle.promise, late]);
    clearTimeout(timer);
    if (outcome !== "late") return;
    const dropped = this.#queue.splice(0);
    for (const input of dropped) this.#o.metrics?.events.inc({ type: input.type, action: "dropped" });
    if (dropped.length > 0)
      this.#o.log.warn({ dropped: dropped.length, withinMs }, "dropped Events not written in time at shutdown");
  }

  /** Starts writers for queued Events up to `writers`; each takes the next when it is done. */
  #drain(): void {
    while (this.#writing < (this.#o.writers ?? DEFAULT_WRITERS) && this.#queue.length > 0) {
      const input = this.#queue.shift()!;
      this.#writing += 1;
      // #record never rejects for a prepared Event: failures are logged and counted.
      void this.#record(input).finally(() => {
        this.#writing -= 1;
        this.#drain();
        if (this.#queue.length === 0 && this.#writing === 0 && this.#idle) {
          this.#idle.resolve();
          this.#idle = undefined;
        }
      });
    }
  }

  #record(input: EventInput): Promise<void> {
    const key = aggregationKey(input);
    const previous = this.#inFlight.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.#write(input));
    this.#inFlight.set(key, next);
    return next.finally(() => {
      if (this.#inFlight.get(key) === next) this.#inFlight.delete(key);
    });
  }

  async #write(input: EventInput): Promise<void> {
    const { client, log, metrics } = this.#o;
    const namespace = input.regarding.namespace || "default";
    const decision = this.#aggregator.decide(input);
    try {
      if (decision.kind === "bump") {
        try {
          await client.request("patch", objectPath(Resources.Event, namespace, decision.name), {
            body: { series: { count: decision.count, lastObservedTime: formatMicroTime(decision.lastObservedMs) } },
            contentType: ContentTypes.mergePatch,
          });
          metrics?.events.inc({ type: input.type, action: "counted" });
          return;
        } catch (err) {
          // The Event expired (the API server keeps them about an hour): start a new series.
          if (!(err instanceof ApiError && err.statusCode === 404)) throw err;
          this.#aggregator.reset(input);
          await this.#write(input);
          return;
        }
      }
      await client.request("create", collectionPath(Resources.Event, namespace), {
        body: {
          apiVersion: apiVersionOf(Resources.Event),
          kind: "Event",
          metadata: { name: decision.name, namespace },
          eventTime: formatMicroTime(decision.eventTimeMs),
          reportingController: this.#o.controller,
          reportingInstance: this.#o.instance,
          action: input.action,
          reason: input.reason,
          type: input.type,
          note: input.note,
          regarding: {
            apiVersion: input.regarding.apiVersion,
            kind: input.regarding.kind,
            namespace: input.regarding.namespace,
            name: input.regarding.name,
            ...(input.regarding.uid ? { uid: input.regarding.uid } : {}),
          },
        },
      });
      metrics?.events.inc({ type: input.type, action: "created" });
    } catch (err) {
      this.#aggregator.reset(input);
      metrics?.events.inc({ type: input.type, action: "failed" });
      log.warn(
        {
          err: err instanceof Error ? err.message : String(err),
          object: `${namespace}/${input.regarding.name}`,
          reason: input.reason,
        },
        "recording an Event failed",
      );
    }
  }
}
