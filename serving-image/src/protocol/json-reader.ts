/**
 * A JSON reader for request bodies that keeps tensors flat: a rectangular list of numbers (at any
 * depth, e.g. an image as `[[[r,g,b], …], …]`) becomes one {@link NumericList} — its shape and its
 * numbers in one Float64Array — instead of one JavaScript array per row that is walked once and
 * thrown away. Everything else (objects, strings, lists of objects, ragged or mixed lists) reads as
 * `JSON.parse` would give it, so the codecs' checks and error messages stay as they are.
 *
 * Exactness: a number outside a numeric list is converted to the nearest double exactly as
 * `JSON.parse` does (Clinger's fast path when the digits and the power of ten are exact in a double,
 * `Number` on the text otherwise). Inside a list, a number of 16 to 19 significant digits may be
 * held as a double within about an ulp that is checked to round to the same float32 as the exact
 * one; the list keeps its text and reads it again, exactly, for any use other than float32.
 *
 * Anything this reader does not accept — malformed JSON, or input it declines (nesting deeper than
 * {@link MAX_DEPTH}) — goes to `JSON.parse` on the same text, whose answer (a value or a SyntaxError)
 * is the answer: this reader may only be faster than `JSON.parse`, never different.
 */

/** A rectangular, non-empty list of numbers, stored flat in row-major order. */
export class NumericList {
  readonly shape: readonly number[];
  /** The numbers; where `source` is set, some only as close as a float32 needs (see {@link numbers}). */
  readonly #values: Float64Array;
  /** The list's text, kept when some numbers were read for a float32 only. */
  readonly #source: { bytes: Buffer; start: number; end: number } | undefined;
  #exact: Float64Array | undefined;
  #nested: unknown[] | undefined;

  constructor(shape: readonly number[], values: Float64Array, source?: { bytes: Buffer; start: number; end: number }) {
    this.shape = shape;
    this.#values = values;
    this.#source = source;
  }

  /** Elements along the first dimension, as an array's length. */
  get length(): number {
    return this.shape[0]!;
  }

  /** Number of numbers. */
  get size(): number {
    return this.#values.length;
  }

  /** The numbers rounded to float32: what JSON.parse and a Float32Array would hold. */
  float32(): Float32Array {
    return new Float32Array(this.#values);
  }

  /** The numbers exactly as JSON.parse reads them. */
  numbers(): Float64Array {
    if (!this.#source) return this.#values;
    if (!this.#exact) {
      const { bytes, start, end } = this.#source;
      const again = new Reader(bytes, start, end, false).document();
      if (!(again instanceof NumericList)) throw new Error("a numeric list read differently the second time");
      this.#exact = again.numbers();
    }
    return this.#exact;
  }

  /** The list as `JSON.parse` would have built it (made once, for the rare paths that walk lists). */
  toNested(): unknown[] {
    if (this.#nested) return this.#nested;
    const values = this.numbers();
    let i = 0;
    const build = (depth: number): unknown[] => {
      const n = this.shape[depth]!;
      const out = new Array<unknown>(n);
      for (let k = 0; k < n; k++) out[k] = depth === this.shape.length - 1 ? values[i++] : build(depth + 1);
      return out;
    };
    this.#nested = build(0);
    return this.#nested;
  }
}

/** A JSON list as read: a JavaScript array, or a {@link NumericList}. */
export function isList(v: unknown): v is unknown[] | NumericList {
  return Array.isArray(v) || v instanceof NumericList;
}

/** A JSON list as JavaScript values (a NumericList built out), or undefined for anything else. */
export function asArray(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v as unknown[];
  return v instanceof NumericList ? v.toNested() : undefined;
}

/** A JSON object as read (not a list, not null). */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof NumericList);
}

/** Deeper lists and objects go to JSON.parse (the recursive descent would risk the stack). */
export const MAX_DEPTH = 512;

/** Thrown inside the reader for input it leaves to JSON.parse; never escapes this module. */
class Declined extends Error {}
const declined = new Declined("declined");

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** Integers below 2^53 are exact in a double: 15 decimal digits always are. */
const MAX_FAST_DIGITS = 15;
/** Significant digits the float32 path reads (15 + 4: the low part stays below 10^4). */
const MAX_DIGITS = 19;
/** 2^-49: a relative step of several ulps of a double, far below an ulp of a float32. */
const FLOAT32_MARGIN = 2 ** -49;
const FLOAT32_MIN_NORMAL = 2 ** -126;
const FLOAT32_MAX = 3.4028234663852886e38;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/**
 * Where the numbers of the list being read go before they are copied out at its end: one array for
 * every read (reading is synchronous), grown by doubling and kept up to {@link SCRATCH_KEPT}.
 */
let scratch = new Float64Array(4096);
const SCRATCH_KEPT = 1 << 20;

class Reader {
  readonly #b: Buffer;
  readonly #end: number;
  #pos: number;
  /** Whether numbers in lists may be read as close as a float32 needs (see {@link #number}). */
  readonly #float32: boolean;
  /** Set when a number was read that way. */
  approximate = false;

  constructor(bytes: Buffer, start: number, end: number, float32 = true) {
    this.#b = bytes;
    this.#pos = start;
    this.#end = end;
    this.#float32 = float32;
  }

  document(): unknown {
    const v = this.#value(0);
    this.#ws();
    if (this.#pos !== this.#end) throw declined;
    return v;
  }

  #ws(): void {
    const b = this.#b;
    let p = this.#pos;
    while (p < this.#end) {
      const c = b[p]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.#pos = p;
  }

  #peek(): number {
    return this.#pos < this.#end ? this.#b[this.#pos]! : -1;
  }

  #value(depth: number): unknown {
    if (depth > MAX_DEPTH) throw declined;
    this.#ws();
    const c = this.#peek();
    switch (c) {
      case OPEN_LIST: {
        const packed = this.#numericList();
        return packed ?? this.#list(depth);
      }
      case OPEN_OBJECT:
        return this.#object(depth);
      case QUOTE:
        return this.#string();
      case 0x74: // t
        return this.#literal("true", true);
      case 0x66: // f
        return this.#literal("false", false);
      case 0x6e: // n
        return this.#literal("null", null);
      default:
        if (c === MINUS || (c >= ZERO && c <= NINE)) return this.#number(false);
        throw declined;
    }
  }

  #literal<T>(text: string, value: T): T {
    if (this.#pos + text.length > this.#end) throw declined;
    for (let i = 0; i < text.length; i++) if (this.#b[this.#pos + i] !== text.charCodeAt(i)) throw declined;
    this.#pos += text.length;
    return value;
  }

  #list(depth: number): unknown[] {
    this.#pos++; // [
    const out: unknown[] = [];
    this.#ws();
    if (this.#peek() === CLOSE_LIST) {
      this.#pos++;
      return out;
    }
    for (;;) {
      out.push(this.#value(depth + 1));
      this.#ws();
      const c = this.#peek();
      this.#pos++;
      if (c === CLOSE_LIST) return out;
      if (c !== COMMA) throw declined;
    }
  }

  #object(depth: number): Record<string, unknown> {
    this.#pos++; // {
    const out: Record<string, unknown> = {};
    this.#ws();
    if (this.#peek() === CLOSE_OBJECT) {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.#ws();
      if (this.#peek() !== QUOTE) throw declined;
      const key = this.#string();
      this.#ws();
      if (this.#peek() !== COLON) throw declined;
      this.#pos++;
      const v = this.#value(depth + 1);
      // JSON.parse makes "__proto__" an own property; an assignment would set the prototype.
      if (key === "__proto__")
        Object.defineProperty(out, key, { value: v, writable: true, enumerable: true, configurable: true });
      else out[key] = v;
      this.#ws();
      const c = this.#peek();
      this.#pos++;
      if (c === CLOSE_OBJECT) return out;
      if (c !== COMMA) throw declined;
    }
  }

  #string(): string {
    const b = this.#b;
    let p = ++this.#pos; // after the opening quote
    let start = p;
    let out = "";
    for (;;) {
      if (p >= this.#end) throw declined;
      const c = b[p]!;
      if (c === QUOTE) break;
      if (c < 0x20) throw declined;
      if (c !== BACKSLASH) {
        p++;
        continue;
      }
      out += b.toString("utf8", start, p);
      if (p + 1 >= this.#end) throw declined;
      const e = b[p + 1]!;
      p += 2;
      switch (e) {
        case QUOTE:
          out += '"';
          break;
        case BACKSLASH:
          out += "\\";
          break;
        case 0x2f:
          out += "/";
          break;
        case 0x62:
          out += "\b";
          break;
        case 0x66:
          out += "\f";
          break;
        case 0x6e:
          out += "\n";
          break;
        case 0x72:
          out += "\r";
          break;
        case 0x74:
          out += "\t";
          break;
        case 0x75: {
          if (p + 4 > this.#end) throw declined;
          let code = 0;
          for (let i = 0; i < 4; i++) {
            const h = hexValue(b[p + i]!);
            if (h < 0) throw declined;
            code = code * 16 + h;
          }
          out += String.fromCharCode(code);
          p += 4;
          break;
        }
        default:
          throw declined;
      }
      start = p;
    }
    this.#pos = p + 1;
    return out + b.toString("utf8", start, p);
  }

  /**
   * One JSON number at the current position: exactly the double JSON.parse reads, unless
   * `float32Will` is true — then, for a number with 16 to 19 significant digits (how most clients
   * print a float32), a double within ~1 ulp of it that rounds to the same float32, which is all
   * a float32 tensor keeps (checked for each number; {@link Reader.approximate} records that it
   * happened, and {@link NumericList.numbers} reads the text again when exact doubles are wanted).
   */
  #number(float32Will: boolean): number {
    const b = this.#b;
    const end = this.#end;
    const start = this.#pos;
    let p = start;
    const negative = b[p] === MINUS;
    if (negative) p++;
    // The significant digits: the first 15 in `high`, the next (up to 4) in `low`.
    let high = 0;
    let low = 0;
    let lowDigits = 0;
    let digits = 0;
    let exponent = 0; // of the last significant digit kept
    let c = p < end ? b[p]! : -1;
    if (c === ZERO) {
      p++;
      c = p < end ? b[p]! : -1;
    } else if (c > ZERO && c <= NINE) {
      do {
        if (digits < MAX_FAST_DIGITS) high = high * 10 + (c - ZERO);
        else if (digits < MAX_DIGITS) {
          low = low * 10 + (c - ZERO);
          lowDigits++;
        } else exponent++;
        digits++;
        p++;
        c = p < end ? b[p]! : -1;
      } while (c >= ZERO && c <= NINE);
    } else {
      throw declined;
    }
    if (c === DOT) {
      p++;
      c = p < end ? b[p]! : -1;
      if (!(c >= ZERO && c <= NINE)) throw declined;
      do {
        if (digits === 0 && c === ZERO) {
          exponent--; // a leading zero
        } else {
          if (digits < MAX_FAST_DIGITS) {
            high = high * 10 + (c - ZERO);
            exponent--;
          } else if (digits < MAX_DIGITS) {
            low = low * 10 + (c - ZERO);
            lowDigits++;
            exponent--;
          }
          digits++;
        }
        p++;
        c = p < end ? b[p]! : -1;
      } while (c >= ZERO && c <= NINE);
    }
    if (c === 0x65 || c === 0x45) {
      p++;
      c = p < end ? b[p]! : -1;
      let sign = 1;
      if (c === PLUS || c === MINUS) {
        if (c === MINUS) sign = -1;
        p++;
        c = p < end ? b[p]! : -1;
      }
      if (!(c >= ZERO && c <= NINE)) throw declined;
      let e = 0;
      do {
        if (e < 100_000) e = e * 10 + (c - ZERO);
        p++;
        c = p < end ? b[p]! : -1;
      } while (c >= ZERO && c <= NINE);
      exponent += sign * e;
    }
    this.#pos = p;
    if (digits <= MAX_FAST_DIGITS && exponent >= -22 && exponent <= 22) {
      // Both operands are exact doubles, so one multiplication or division rounds correctly.
      const v = scaled(high, exponent);
      return negative ? -v : v;
    }
    if (float32Will && digits <= MAX_DIGITS) {
      // value = high × 10^(exponent + lowDigits) + low × 10^exponent: each term within half an ulp,
      // the low term 10^11 times smaller, so the sum is within about one ulp of the exact value.
      const e1 = exponent + lowDigits;
      if (e1 >= -22 && e1 <= 22 && exponent >= -22) {
        const v = scaled(high, e1) + scaled(low, exponent);
        // Every double within a few ulps of v rounds to one float32, so the exact double does too.
        const a = Math.abs(v);
        if (
          a >= FLOAT32_MIN_NORMAL &&
          a <= FLOAT32_MAX &&
          Math.fround(v * (1 + FLOAT32_MARGIN)) === Math.fround(v * (1 - FLOAT32_MARGIN))
        ) {
          this.approximate = true;
          return negative ? -v : v;
        }
      }
    }
    return Number(b.toString("latin1", start, p));
  }

  /**
   * A rectangular list of numbers at the current `[`, or undefined (position unchanged) when the
   * list is anything else: empty, ragged, or holding something other than numbers.
   */
  #numericList(): NumericList | undefined {
    const start = this.#pos;
    // The length of every list at each depth, once the first one there has closed (-1 before).
    const shape: number[] = [-1];
    const counts: number[] = [0];
    let leafDepth = -1;
    let depth = 0;
    let n = 0;
    this.approximate = false;
    this.#pos++; // [
    for (;;) {
      // An element of the list at `depth`.
      this.#ws();
      const c = this.#peek();
      if (c === OPEN_LIST) {
        if (leafDepth !== -1 && depth >= leafDepth) return this.#rewind(start);
        if (depth + 1 > MAX_DEPTH) return this.#rewind(start);
        depth++;
        counts[depth] = 0;
        if (shape.length === depth) shape.push(-1);
        this.#pos++;
        continue;
      }
      if (c === MINUS || (c >= ZERO && c <= NINE)) {
        if (leafDepth === -1) leafDepth = depth;
        else if (depth !== leafDepth) return this.#rewind(start);
        const v = this.#number(this.#float32);
        if (n === scratch.length) {
          const grown = new Float64Array(n * 2);
          grown.set(scratch);
          scratch = grown;
        }
        scratch[n++] = v;
        counts[depth]!++;
      } else {
        // ']' right after '[' (an empty list), or anything that is not a number or a list.
        return this.#rewind(start);
      }
      // After an element: ',' for the next one, or ']' closing one or more lists.
      for (;;) {
        this.#ws();
        const d = this.#peek();
        if (d === COMMA) {
          this.#pos++;
          break;
        }
        if (d !== CLOSE_LIST) return this.#rewind(start);
        this.#pos++;
        const count = counts[depth]!;
        if (shape[depth] === -1) shape[depth] = count;
        else if (shape[depth] !== count) return this.#rewind(start);
        if (depth === 0) {
          const source = this.approximate ? { bytes: this.#b, start, end: this.#pos } : undefined;
          const values = scratch.slice(0, n);
          if (scratch.length > SCRATCH_KEPT) scratch = new Float64Array(SCRATCH_KEPT);
          return new NumericList(shape.slice(0, leafDepth + 1), values, source);
        }
        depth--;
        counts[depth]!++;
      }
    }
  }

  #rewind(start: number): NumericList | undefined {
    this.#pos = start;
    return undefined;
  }
}

/** digits × 10^exponent in one correctly rounded operation (|exponent| ≤ 22: the power is exact). */
function scaled(digits: number, exponent: number): number {
  return exponent >= 0 ? digits * POW10[exponent]! : digits / POW10[-exponent]!;
}

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Reads the JSON text in `bytes[start, end)` (UTF-8). Throws JSON.parse's SyntaxError for malformed
 * text, so callers report it as they always have.
 */
export function readJson(bytes: Buffer, start = 0, end = bytes.length): unknown {
  try {
    return new Reader(bytes, start, end).document();
  } catch (err) {
    if (!(err instanceof Declined)) throw err;
  }
  return JSON.parse(bytes.toString("utf8", start, end)) as unknown;
}
