/**
 * Admission of requests from their headers, before their bodies are read. An admitted request holds,
 * until it is answered:
 * - a queue slot while its body arrives (its queue entry takes the slot's place once the body is in),
 *   so requests that cannot be queued are refused before their bodies are read;
 * - its body's bytes, reserved from Content-Length before reading (a chunked body's as they arrive),
 *   against a budget sized from memory, so the bodies held at once stay within it however many
 *   requests the queue takes;
 * - one of its client address's transfer slots while the body arrives: once half the queue is
 *   taken, an address may send only its share of bodies at once, so a few slow senders cannot hold
 *   every queue slot.
 * Pure bookkeeping: the HTTP layer says who the client is and how many bytes arrive.
 */
import { ErrorCodes, ServingError } from "./protocol/errors.ts";

export interface AdmissionLimits {
  readonly maxQueue: number;
  /** Bytes of request bodies held at once. */
  readonly bodyMemoryBytes: number;
  /** Bodies one client address may be sending at once; 0 = no limit. */
  readonly maxBodiesPerClient: number;
}

/** Seconds a refused client should wait (Retry-After): admission frees up as requests finish. */
const retryAfterSeconds = 1;

export function queueFull(maxQueue: number): ServingError {
  return new ServingError(
    ErrorCodes.resourceExhausted,
    `The request queue is full (${maxQueue} requests waiting); retry later`,
    retryAfterSeconds,
  );
}

/** What one admitted request holds. */
export interface Admission {
  /** Reserves `bytes` more of a body that declared no length, as they arrive; throws 413/429 past the budget. */
  grow(bytes: number): void;
  /** The body is in: the client may send another; the bytes stay held until release(). */
  received(): void;
  /** The request joins the queue: its queue entry takes the place of the slot it held. */
  enqueued(): void;
  /** The request is answered or failed: gives back everything it still holds. */
  release(): void;
}

export class AdmissionControl {
  readonly #limits: AdmissionLimits;
  readonly #queueDepth: () => number;
  /** Queue slots held by requests whose bodies are still being read. */
  #slots = 0;
  #heldBytes = 0;
  readonly #sending = new Map<string, number>();

  /** `queueDepth` reads how many requests wait in the queue itself. */
  constructor(limits: AdmissionLimits, queueDepth: () => number) {
    this.#limits = limits;
    this.#queueDepth = queueDepth;
  }

  /** Bytes of request bodies held now. */
  get heldBytes(): number {
    return this.#heldBytes;
  }

  /**
   * Admits a request whose body declares `declaredBytes` (undefined for a chunked body) from
   * `client` (undefined: not counted per client). Throws 413 when the body alone exceeds the memory
   * budget, 429 (with Retry-After) when the queue, the client's share or the budget is taken.
   */
  admit(declaredBytes: number | undefined, client?: string): Admission {
    const { maxQueue, maxBodiesPerClient } = this.#limits;
    const bytes = declaredBytes ?? 0;
    this.#checkSize(bytes);
    const taken = this.#queueDepth() + this.#slots;
    if (taken >= maxQueue) throw queueFull(maxQueue);
    // Without a per-client limit there is nothing to count.
    const counted = maxBodiesPerClient > 0 ? client : undefined;
    const sending = counted === undefined ? 0 : (this.#sending.get(counted) ?? 0);
    // The share applies only once half the queue is taken: until then one busy client (a proxy, a
    // sidecar, a gateway: every request from one address) is not throttled for being one address,
    // and past it no address can hold the rest of the queue with bodies it is slow to send.
    if (counted !== undefined && sending >= maxBodiesPerClient && taken >= maxQueue / 2) {
      throw new ServingError(
        ErrorCodes.resourceExhausted,
        `Client ${counted} is already sending ${sending} request ${sending === 1 ? "body" : "bodies"} while the ` +
          `queue is half full (${taken} of ${maxQueue}); one client address may then send ${maxBodiesPerClient} at ` +
          "once; retry later",
        retryAfterSeconds,
      );
    }
    this.#checkRoom(bytes);
    this.#slots++;
    this.#heldBytes += bytes;
    if (counted !== undefined) this.#sending.set(counted, sending + 1);
    // Each part is given back once, by whichever call comes first.
    let slot = true;
    let held = bytes;
    let sender = counted;
    const stopSending = (): void => {
      if (sender === undefined) return;
      const left = (this.#sending.get(sender) ?? 1) - 1;
      if (left > 0) this.#sending.set(sender, left);
      else this.#sending.delete(sender);
      sender = undefined;
    };
    const freeSlot = (): void => {
      if (slot) this.#slots--;
      slot = false;
    };
    return {
      grow: (more) => {
        this.#checkSize(held + more);
        this.#checkRoom(more);
        this.#heldBytes += more;
        held += more;
      },
      received: stopSending,
      enqueued: freeSlot,
      release: () => {
        stopSending();
        freeSlot();
        this.#heldBytes -= held;
        held = 0;
      },
    };
  }

  /** 413 for a body that could never fit, even alone. */
  #checkSize(bytes: number): void {
    const budget = this.#limits.bodyMemoryBytes;
    if (bytes <= budget) return;
    throw new ServingError(
      ErrorCodes.payloadTooLarge,
      `Request body of ${bytes} bytes exceeds the memory budget for request bodies (${budget} bytes)`,
    );
  }

  /** 429 unless `more` bytes fit beside the bodies held now. */
  #checkRoom(more: number): void {
    const budget = this.#limits.bodyMemoryBytes;
    if (this.#heldBytes + more <= budget) return;
    throw new ServingError(
      ErrorCodes.resourceExhausted,
      `Request bodies would exceed their memory budget of ${budget} bytes (${this.#heldBytes} held, this one needs ${more} more); retry later`,
      retryAfterSeconds,
    );
  }
}
