/**
 * Kubernetes resource quantities ("500m", "1.5Gi", "1e3", ".5"), read exactly as the API server's
 * resource.ParseQuantity (k8s.io/apimachinery/pkg/api/resource, v0.34) reads them, which is also what
 * CEL's isQuantity() and quantity() accept. The grammar is a step-by-step port of its parser (it is
 * looser than the documented regex: "1.", "+", "m" and "e3" are quantities too), so the runtime
 * validator admits exactly the strings the API server admits; the value is exact (BigInt), including
 * the API server's rounding of anything finer than 1n up to 1n. Pure.
 */

/** An exact value, num / den with den > 0. */
export interface Quantity {
  readonly num: bigint;
  readonly den: bigint;
}

/** The characters a suffix is made of, and the suffixes the API server knows (decimal and binary exponents). */
const SUFFIX_CHARS = "eEinumkKMGTP";
const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = {
  "": 0,
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};
const BINARY_SUFFIXES: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
/** Resolution of a quantity: values are rounded up to a multiple of 1n (10^-9). */
const NANO_SCALE = 9;
/** Decimal digits that always fit an int64 (maxInt64Factors). */
const INT64_DIGITS = 18;
/**
 * Exponents beyond this are clamped: the value is then astronomically large or rounded up to 1n
 * either way, and nothing this module answers (sign, order, whole or not) changes, while 10^(2^31)
 * would not fit in memory.
 */
const EXPONENT_CLAMP = 100_000;

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= "0" && c <= "9";

interface Parts {
  positive: boolean;
  /** The number as written, sign included, suffix excluded. */
  value: string;
  num: string;
  denom: string;
  suffix: string;
}

/** parseQuantityString: sign, numerator (leading zeros stripped), denominator and suffix, or undefined. */
function split(str: string): Parts | undefined {
  let positive = true;
  let pos = 0;
  const end = str.length;
  if (str[0] === "-" || str[0] === "+") {
    positive = str[0] === "+";
    pos++;
  }
  while (pos < end && str[pos] === "0") pos++;
  if (pos >= end) return { positive, value: "0", num: "0", denom: "", suffix: "" };
  let i = pos;
  while (i < end && isDigit(str[i])) i++;
  if (i >= end) return { positive, value: str, num: str.slice(pos), denom: "", suffix: "" };
  const num = str.slice(pos, i) === "" ? "0" : str.slice(pos, i);
  pos = i;
  let denom = "";
  if (str[pos] === ".") {
    pos++;
    i = pos;
    while (i < end && isDigit(str[i])) i++;
    denom = str.slice(pos, i);
    if (i >= end) return { positive, value: str, num, denom, suffix: "" };
    pos = i;
  }
  const value = str.slice(0, pos);
  const suffixStart = pos;
  i = pos;
  while (i < end && SUFFIX_CHARS.includes(str[i]!)) i++;
  if (i >= end) return { positive, value, num, denom, suffix: str.slice(suffixStart) };
  pos = i;
  if (str[pos] === "-" || str[pos] === "+") pos++;
  for (i = pos; i < end; i++) if (!isDigit(str[i])) return undefined;
  return { positive, value, num, denom, suffix: str.slice(suffixStart) };
}

type Format = "DecimalSI" | "BinarySI" | "DecimalExponent";

/** Go's strconv.ParseInt(s, 10, 64). */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const v = BigInt(s);
  return v < INT64_MIN || v > INT64_MAX ? undefined : v;
}

/** The suffix's base and exponent, as the API server's suffixer interprets it. */
function interpret(suffix: string): { base: 10 | 2; exponent: number; format: Format } | undefined {
  const decimal = DECIMAL_SUFFIXES[suffix];
  if (decimal !== undefined) return { base: 10, exponent: decimal, format: "DecimalSI" };
  const binary = BINARY_SUFFIXES[suffix];
  if (binary !== undefined) return { base: 2, exponent: binary, format: "BinarySI" };
  if (suffix.length > 1 && (suffix[0] === "e" || suffix[0] === "E")) {
    const parsed = parseInt64(suffix.slice(1));
    // Go keeps the low 32 bits (int32(parsed)).
    return parsed === undefined
      ? undefined
      : { base: 10, exponent: Number(BigInt.asIntN(32, parsed)), format: "DecimalExponent" };
  }
  return undefined;
}

const pow10 = (n: number): bigint => 10n ** BigInt(Math.min(n, EXPONENT_CLAMP));

/** value * 10^exponent as a fraction. */
function scaled(value: bigint, exponent: number): Quantity {
  return exponent >= 0 ? { num: value * pow10(exponent), den: 1n } : { num: value, den: pow10(-exponent) };
}

/** Parses `s` as the API server does; undefined when it is not a quantity. */
export function parseQuantity(s: string): Quantity | undefined {
  if (s === "") return undefined;
  if (s === "0") return { num: 0n, den: 1n };
  const p = split(s);
  if (p === undefined) return undefined;
  const suffix = interpret(p.suffix);
  if (suffix === undefined) return undefined;
  let precision: number;
  let scale = 0;
  let mantissa = 1n;
  if (suffix.format === "BinarySI") {
    if (suffix.exponent >= 0 && p.denom === "") {
      mantissa = 1n << BigInt(suffix.exponent);
      precision = 15 - p.num.length - Math.trunc((suffix.exponent * 3) / 10) - 1;
    } else {
      precision = -1;
    }
  } else {
    scale = suffix.exponent;
    precision = INT64_DIGITS - (p.num.length + p.denom.length);
  }
  // The fast path: an int64 times a power of ten, exact.
  if (precision >= 0) {
    scale -= p.denom.length;
    if (scale >= -NANO_SCALE) {
      const result = BigInt(p.num + p.denom) * mantissa;
      if (result <= INT64_MAX) return scaled(p.positive ? result : -result, scale);
    }
  }
  // The slow path: an arbitrary-precision decimal, rounded up (away from zero) to 1n.
  const digits = /^[+-]?([0-9]*)(?:[.]([0-9]*))?$/.exec(p.value);
  if (digits === null || (digits[1] === "" && (digits[2] ?? "") === "")) return undefined;
  let unscaled = BigInt((digits[1] ?? "") + (digits[2] ?? "") || "0");
  let decScale = (digits[2] ?? "").length;
  if (suffix.base === 10) decScale -= suffix.exponent;
  else unscaled *= 1n << BigInt(suffix.exponent);
  if (unscaled !== 0n) {
    if (decScale > NANO_SCALE) {
      const divisor = pow10(decScale - NANO_SCALE);
      unscaled = (unscaled + divisor - 1n) / divisor;
    } else {
      unscaled *= pow10(NANO_SCALE - decScale);
    }
    decScale = NANO_SCALE;
  }
  let value = scaled(unscaled, -decScale);
  // Binary quantities are capped at the largest int64.
  if (suffix.format === "BinarySI" && value.num > INT64_MAX * value.den) value = { num: INT64_MAX, den: 1n };
  const negative = p.value.startsWith("-");
  return negative ? { num: -value.num, den: value.den } : value;
}

/**
 * The documented grammar starts a quantity with a number ("1", "1.", ".5", "-2"); the parser also
 * takes "m", "+", "Ki" and "e3", all of them zero. Requiring the number keeps such strings (which
 * could be names or label values) from passing for quantities.
 */
export const QUANTITY_NUMBER_PATTERN = "^[+-]?([0-9]|[.][0-9])";

/** A quantity as documented: a number first, then whatever the API server's parser accepts. */
export function quantityOf(s: string): Quantity | undefined {
  return new RegExp(QUANTITY_NUMBER_PATTERN).test(s) ? parseQuantity(s) : undefined;
}

/** -1, 0 or 1 as a is less than, equal to or greater than b. */
export function compareQuantities(a: Quantity, b: Quantity): number {
  const d = a.num * b.den - b.num * a.den;
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Whether the quantity is a whole number. */
export function isWhole(q: Quantity): boolean {
  return q.num % q.den === 0n;
}

/**
 * The quantity rounded away from zero to a multiple of 1m, as the API server stores every quantity
 * of a resource list (a container's requests and limits): "100u" is read back as "1m".
 */
export function roundUpToMilli(q: Quantity): Quantity {
  const n = q.num * 1000n;
  const whole = n / q.den;
  const rounded = whole * q.den === n ? whole : n < 0n ? whole - 1n : whole + 1n;
  return { num: rounded, den: 1000n };
}

/** The quantity as a JavaScript number (approximate; Infinity beyond its range). */
export function quantityNumber(q: Quantity): number {
  // Scale down together first, so the division keeps precision for very large fractions.
  const shift = BigInt(Math.max(0, q.den.toString().length - 300));
  const f = 10n ** shift;
  return Number(q.num / f) / Number(q.den / f);
}
