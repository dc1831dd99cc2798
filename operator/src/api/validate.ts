/**
 * Runtime validation and defaulting against the schema, mirroring what the API server does for the
 * CRD: structural checks (types, enums, bounds, patterns, unknown fields as under strict field
 * validation), defaults, then the CEL rules through their TypeScript predicates. The API server stays
 * the real validator; this lets pure code and tests catch mistakes without a cluster.
 */
import type { JSONSchemaProps, Rule, Schema } from "./schema.ts";

/** One problem, named by its field path in the API server's notation (`spec.scheduling.tolerations[0].key`). */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const join = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);

/**
 * Fills in schema defaults the way the API server does: a missing property with a default gets a copy
 * of it, then defaulting continues inside (so `default: {}` on an object pulls in its children's defaults).
 * Mutates and returns `value`.
 */
export function applyDefaults<T>(schema: Schema<unknown>, value: T): T {
  fill(schema, value);
  return value;
}

function fill(schema: Schema<unknown>, value: unknown): void {
  if (isRecord(value)) {
    if (schema.properties !== undefined) {
      for (const [key, child] of Object.entries(schema.properties)) {
        if (value[key] === undefined && child.props.default !== undefined) {
          value[key] = structuredClone(child.props.default);
        }
        if (value[key] !== undefined) fill(child, value[key]);
      }
    } else if (schema.additionalProperties !== undefined) {
      for (const v of Object.values(value)) fill(schema.additionalProperties, v);
    }
  } else if (Array.isArray(value) && schema.items !== undefined) {
    for (const item of value as unknown[]) fill(schema.items, item);
  }
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function checkType(p: JSONSchemaProps, v: unknown): string | undefined {
  if (p["x-kubernetes-int-or-string"] === true) {
    return (typeof v === "number" && Number.isInteger(v)) || typeof v === "string"
      ? undefined
      : `must be of type integer,string: "${typeName(v)}"`;
  }
  const ok =
    p.type === undefined ||
    (p.type === "object" && isRecord(v)) ||
    (p.type === "array" && Array.isArray(v)) ||
    (p.type === "string" && typeof v === "string") ||
    (p.type === "boolean" && typeof v === "boolean") ||
    (p.type === "number" && typeof v === "number" && Number.isFinite(v)) ||
    (p.type === "integer" && typeof v === "number" && Number.isInteger(v));
  return ok ? undefined : `must be of type ${p.type}: "${typeName(v)}"`;
}

/** String length as the API server counts it for minLength/maxLength: in Unicode code points. */
function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function checkScalar(p: JSONSchemaProps, v: unknown, field: string, errors: FieldError[]): void {
  const fail = (message: string): void => {
    errors.push({ field, message });
  };
  if (typeof v === "string") {
    if (p.enum !== undefined && !p.enum.includes(v)) {
      fail(`Unsupported value: "${v}": supported values: ${p.enum.map((e) => `"${e}"`).join(", ")}`);
    }
    if (p.minLength !== undefined && codePoints(v) < p.minLength) {
      fail(`should be at least ${p.minLength} chars long`);
    }
    if (p.maxLength !== undefined && codePoints(v) > p.maxLength) {
      fail(`Too long: may not be more than ${p.maxLength} bytes`);
    }
    if (p.pattern !== undefined && !new RegExp(p.pattern).test(v)) fail(`should match '${p.pattern}'`);
    if (p.format === "date-time" && !DATE_TIME.test(v)) fail(`must be a date-time (RFC 3339)`);
  }
  if (typeof v === "number") {
    if (p.minimum !== undefined) {
      if (p.exclusiveMinimum === true ? v <= p.minimum : v < p.minimum) {
        fail(`should be greater than ${p.exclusiveMinimum === true ? "" : "or equal to "}${p.minimum}`);
      }
    }
    if (p.maximum !== undefined && v > p.maximum) fail(`should be less than or equal to ${p.maximum}`);
  }
}

function runRule(r: Rule, value: unknown, field: string, errors: FieldError[]): void {
  let ok: boolean;
  try {
    ok = r.check(value as never);
  } catch {
    ok = false;
  }
  if (!ok) {
    const at = r.fieldPath === undefined ? field : field + r.fieldPath;
    errors.push({ field: at.replace(/^\./, ""), message: r.message });
  }
}

interface Pending {
  readonly rule: Rule;
  readonly value: unknown;
  readonly field: string;
}

interface Walk {
  readonly errors: FieldError[];
  readonly rules: Pending[];
  typeErrors: number;
}

/**
 * Validates `value` (already defaulted) against `schema` and returns every problem found. As in the
 * API server, CEL rules are skipped when any value has the wrong type, and then a note says so.
 */
export function validateAgainst(schema: Schema<unknown>, value: unknown, field = ""): FieldError[] {
  const w: Walk = { errors: [], rules: [], typeErrors: 0 };
  walk(schema, value, field, w);
  if (w.typeErrors > 0) {
    if (w.rules.length > 0) {
      w.errors.push({ field, message: "some validation rules were not checked because the object was invalid" });
    }
  } else {
    for (const r of w.rules) runRule(r.rule, r.value, r.field, w.errors);
  }
  return w.errors;
}

function walk(schema: Schema<unknown>, value: unknown, field: string, w: Walk): void {
  const errors = w.errors;
  const p = schema.props;
  const typeError = checkType(p, value);
  if (typeError !== undefined) {
    errors.push({ field, message: typeError });
    w.typeErrors++;
    return;
  }
  for (const r of schema.rules) w.rules.push({ rule: r, value, field });
  checkScalar(p, value, field, errors);
  if (isRecord(value)) {
    for (const key of p.required ?? []) {
      if (value[key] === undefined) errors.push({ field: join(field, key), message: "Required value" });
    }
    if (p.maxProperties !== undefined && Object.keys(value).length > p.maxProperties) {
      errors.push({ field, message: `must have at most ${p.maxProperties} properties` });
    }
    if (schema.properties !== undefined) {
      for (const [key, v] of Object.entries(value)) {
        const child = schema.properties[key];
        if (child === undefined)
          errors.push({ field: join(field, key), message: `unknown field "${join(field, key)}"` });
        else if (v !== undefined) walk(child, v, join(field, key), w);
      }
    } else if (schema.additionalProperties !== undefined) {
      for (const [key, v] of Object.entries(value)) walk(schema.additionalProperties, v, `${field}.${key}`, w);
    }
    // An object without properties or additionalProperties is free-form (metadata).
  }
  if (Array.isArray(value)) {
    const items = value as unknown[];
    if (p.maxItems !== undefined && items.length > p.maxItems) {
      errors.push({ field, message: `Too many: ${items.length}: must have at most ${p.maxItems} items` });
    }
    if (p.minItems !== undefined && items.length < p.minItems) {
      errors.push({ field, message: `should have at least ${p.minItems} items` });
    }
    items.forEach((item, i) => {
      if (schema.items !== undefined) walk(schema.items, item, `${field}[${i}]`, w);
    });
    const keys = p["x-kubernetes-list-map-keys"];
    if (p["x-kubernetes-list-type"] === "map" && keys !== undefined) {
      const seen = new Set<string>();
      items.forEach((item, i) => {
        const id = JSON.stringify(keys.map((k) => (isRecord(item) ? (item[k] as Json | undefined) : undefined)));
        if (seen.has(id)) errors.push({ field: `${field}[${i}]`, message: `Duplicate value: ${id}` });
        seen.add(id);
      });
    }
  }
}
