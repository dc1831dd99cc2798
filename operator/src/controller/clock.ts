/**
 * Time as a dependency. The queue, the rate limiters, the informers' back-off and leader election
 * read time only through this interface, so unit tests drive them with a fake clock instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch, never going backwards or jumping (see `realClock`). */
  now(): number;
  /** Runs `fn` after `ms` milliseconds; the returned function cancels it (a no-op once it has run). */
  schedule(fn: () => void, ms: number): () => void;
}

/**
 * The wall clock as it was when the process started, advanced by the monotonic clock: durations
 * (lease renewal deadlines, back-off, staleness) stay right when NTP steps the system clock, at the
 * cost of timestamps drifting by the size of such a step. Timers keep the process alive (the
 * leader's renew loop may be the only thing running); every component cancels its timers when stopped.
 */
export const realClock: Clock = {
  now: () => Math.floor(performance.timeOrigin + performance.now()),
  schedule(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    return () => {
      clearTimeout(timer);
    };
  },
};

/** Resolves after `ms` on `clock`, or early (without rejecting) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      cancel();
      resolve();
    };
    const cancel = clock.schedule(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * MicroTime as the API server writes it (Lease times, Event times): RFC 3339 with exactly six
 * fractional digits. A Date only has milliseconds, so the last three digits are zero.
 */
export function formatMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
