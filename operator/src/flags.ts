/** Numeric command-line flags, checked before anything starts so a bad value fails fast and by name. Pure. */

export interface NumberRule {
  /** Smallest value allowed. */
  readonly min: number;
  /** Whether `min` itself is allowed (default true). */
  readonly minInclusive?: boolean;
  readonly max?: number;
  readonly integer?: boolean;
}

/** The value of `--name`, or an Error naming the flag and what it must be. */
export function numberFlag(name: string, raw: string | undefined, rule: NumberRule): number {
  const n = raw === undefined || raw.trim() === "" ? NaN : Number(raw);
  const inclusive = rule.minInclusive ?? true;
  const ok =
    Number.isFinite(n) &&
    (inclusive ? n >= rule.min : n > rule.min) &&
    (rule.max === undefined || n <= rule.max) &&
    (!rule.integer || Number.isInteger(n));
  if (ok) return n;
  const kind = rule.integer ? "an integer" : "a number";
  const range =
    rule.max !== undefined
      ? `from ${rule.min} to ${rule.max}`
      : inclusive
        ? `of at least ${rule.min}`
        : `greater than ${rule.min}`;
  throw new Error(`--${name} must be ${kind} ${range}, got ${JSON.stringify(raw ?? "")}`);
}
