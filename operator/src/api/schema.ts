/**
 * A small builder for Kubernetes structural OpenAPI v3 schemas that also carries TypeScript types.
 *
 * Why not TypeBox (installed, 0.34): TypeBox models JSON Schema, not the structural subset the API
 * server accepts. Its literal unions and enums become `anyOf` of `const` (rejected in CRDs), its
 * `Value.Check` ignores `enum` on strings and every `x-kubernetes-*` keyword, and it has no notion of
 * CEL rules. Using it would mean a translation pass to produce the CRD plus a second validator for
 * the rules: two representations that can drift. These builders emit exactly the structural subset
 * (every node typed, no `$ref`, no `patternProperties`), give each node a phantom TypeScript type that
 * `Static<>` reads back, and pair each CEL rule with a TypeScript predicate so the runtime validator
 * (validate.ts) checks the same things the API server does. One definition, three products: types,
 * runtime validation, CRD.
 */

import { satisfies, type PatternRule } from "../../../serving-image/src/grammar.ts";
import { QUANTITY_NUMBER_PATTERN, isWhole, parseQuantity, quantityOf } from "./quantity.ts";

/** Phantom marker: never present at runtime, only carries the TypeScript type of a node. */
declare const typeTag: unique symbol;

/** A CEL rule (`x-kubernetes-validations`) paired with the TypeScript predicate that mirrors it. */
export interface Rule {
  /** CEL expression evaluated by the API server with `self` bound to the node. */
  readonly rule: string;
  /** What the user reads when the rule fails; says what to change. */
  readonly message: string;
  /** JSONPath (relative to the node) of the field the error is reported on. */
  readonly fieldPath?: string;
  readonly reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
  /** Mirrors `rule` for the runtime validator; receives the (defaulted) node value. */
  readonly check: (self: never) => boolean;
}

/** The JSONSchemaProps keywords the builders emit (the CRD output type). */
export interface JSONSchemaProps {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  format?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  enum?: (string | number)[];
  default?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  anyOf?: JSONSchemaProps[];
  "x-kubernetes-int-or-string"?: boolean;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-embedded-resource"?: boolean;
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-map-type"?: "atomic" | "granular";
  "x-kubernetes-validations"?: { rule: string; message: string; fieldPath?: string; reason?: string }[];
}

/** A schema node: what the CRD says, plus the rules' predicates, plus a phantom TypeScript type. */
export interface Schema<T> {
  readonly [typeTag]?: T;
  readonly props: JSONSchemaProps;
  readonly rules: readonly Rule[];
  readonly properties?: Readonly<Record<string, Schema<unknown>>>;
  readonly items?: Schema<unknown>;
  readonly additionalProperties?: Schema<unknown>;
}

/** The TypeScript type a schema node describes. */
export type Static<S> = S extends Schema<infer T> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** Common options: every node has a description so `kubectl explain` teaches the API. */
interface Common<T> {
  default?: T;
  rules?: readonly Rule[];
}

interface StringOptions<T extends string> extends Common<T> {
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  format?: "date-time";
}

function node<T>(props: JSONSchemaProps, rules: readonly Rule[] | undefined, extra?: Partial<Schema<T>>): Schema<T> {
  return { props, rules: rules ?? [], ...extra };
}

function base(description: string, opts: Common<unknown>): JSONSchemaProps {
  const p: JSONSchemaProps = { description };
  if (opts.default !== undefined) p.default = opts.default;
  return p;
}

/** A string node; strings always need a `maxLength` when CEL rules read them (cost estimation). */
export function string(description: string, opts: StringOptions<string> = {}): Schema<string> {
  const p: JSONSchemaProps = { type: "string", ...base(description, opts) };
  if (opts.format !== undefined) p.format = opts.format;
  if (opts.pattern !== undefined) p.pattern = opts.pattern;
  if (opts.minLength !== undefined) p.minLength = opts.minLength;
  if (opts.maxLength !== undefined) p.maxLength = opts.maxLength;
  return node(p, opts.rules);
}

/** A string restricted to `values`; typed as their union. */
export function stringEnum<const V extends readonly string[]>(
  description: string,
  values: V,
  opts: Common<V[number]> = {},
): Schema<V[number]> {
  return node({ type: "string", ...base(description, opts), enum: [...values] }, opts.rules);
}

interface NumberOptions extends Common<number> {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  format?: "int32" | "int64" | "double";
}

function numeric(type: "integer" | "number", description: string, opts: NumberOptions): Schema<number> {
  const p: JSONSchemaProps = { type, ...base(description, opts) };
  if (opts.format !== undefined) p.format = opts.format;
  if (opts.minimum !== undefined) p.minimum = opts.minimum;
  if (opts.exclusiveMinimum !== undefined) p.exclusiveMinimum = opts.exclusiveMinimum;
  if (opts.maximum !== undefined) p.maximum = opts.maximum;
  return node(p, opts.rules);
}

/** A whole number; fractional values are rejected. */
export function integer(description: string, opts: NumberOptions = {}): Schema<number> {
  return numeric("integer", description, opts);
}

/** A JSON number (fractions allowed). */
export function number(description: string, opts: NumberOptions = {}): Schema<number> {
  return numeric("number", description, opts);
}

export function boolean(description: string, opts: Common<boolean> = {}): Schema<boolean> {
  return node({ type: "boolean", ...base(description, opts) }, opts.rules);
}

/**
 * A non-negative Kubernetes resource quantity ("500m", "4Gi", or an integer), the same shape as
 * `resources.requests.cpu`: int-or-string, checked by CEL's quantity library so the error names the
 * field and shows an example (`what` starts the message, e.g. "cpu"), and starting with a number as
 * the documented grammar says. The runtime mirror reads the string with the API server's own
 * grammar (quantity.ts).
 */
export function quantity(
  description: string,
  what: string,
  example: string,
  opts: Common<string | number> = {},
): Schema<string | number> {
  const check = rule<string | number>({
    rule:
      `type(self) == int ? self >= 0 : isQuantity(self) && self.matches(${celString(QUANTITY_NUMBER_PATTERN)}) && ` +
      "!quantity(self).isLessThan(quantity('0'))",
    message: `${what} must be a non-negative quantity such as ${example}`,
    check: (v) => {
      if (typeof v === "number") return v >= 0;
      const q = quantityOf(v);
      return q !== undefined && q.num >= 0n;
    },
  });
  return node(
    {
      ...base(description, opts),
      anyOf: [{ type: "integer" }, { type: "string" }],
      maxLength: 64,
      "x-kubernetes-int-or-string": true,
    },
    [check, ...(opts.rules ?? [])],
  );
}

/** The largest whole quantity wholeQuantityRule admits: 2^45 (32Ti). */
export const MAX_WHOLE_QUANTITY = 2 ** 45;

/**
 * A rule for a quantity node that must be a whole number of at most MAX_WHOLE_QUANTITY (memory in
 * bytes: the kubelet cannot set a limit of 512m, a thousandth of 512 bytes). Negative values and
 * non-quantities are left to quantity()'s own rule.
 *
 * CEL's isInteger() cannot decide this: it answers for the representation, not the value ("1000m"
 * and "1.5Gi" are whole but not "integers"). Instead, the value minus each whole number next to its
 * float approximation is tested for zero, exactly; below 2^45 that approximation is off by far less
 * than 0.5, so this decides every value exactly, as the TypeScript mirror does with BigInts.
 */
export function wholeQuantityRule(message: string): Rule {
  const f = "quantity(self).asApproximateFloat()";
  const limit = `${MAX_WHOLE_QUANTITY}.5`;
  return rule<string | number>({
    rule:
      `type(self) == int ? self <= ${MAX_WHOLE_QUANTITY} : !isQuantity(self) || ${f} < 0.0 || ` +
      `(${f} < ${limit} && [-1, 0, 1].exists(d, sign(quantity(self).sub(int(${f}) + d)) == 0))`,
    message,
    check: (v) => {
      if (typeof v === "number") return v <= MAX_WHOLE_QUANTITY;
      const q = parseQuantity(v);
      if (q === undefined || q.num < 0n) return true;
      return isWhole(q) && q.num <= BigInt(MAX_WHOLE_QUANTITY) * q.den;
    },
  });
}

type ObjectType<P extends Record<string, Schema<unknown>>, R extends keyof P> = Simplify<
  { -readonly [K in R]: Static<P[K]> } & { -readonly [K in Exclude<keyof P, R>]?: Static<P[K]> }
>;

interface ObjectOptions<R extends string> extends Common<object> {
  required?: readonly R[];
}

/** An object with known properties; unknown fields are pruned by the server (or refused under strict validation). */
export function object<P extends Record<string, Schema<unknown>>, const R extends keyof P & string = never>(
  description: string,
  properties: P,
  opts: ObjectOptions<R> = {},
): Schema<ObjectType<P, R>> {
  const p: JSONSchemaProps = {
    type: "object",
    ...base(description, opts),
    properties: Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, v.props])),
  };
  if (opts.required !== undefined && opts.required.length > 0) p.required = [...opts.required];
  return node(p, opts.rules, { properties });
}

/** A map with string keys and uniform values (e.g. a nodeSelector). */
export function map<V>(
  description: string,
  values: Schema<V>,
  opts: Common<Record<string, V>> & { maxProperties?: number } = {},
): Schema<Record<string, V>> {
  const p: JSONSchemaProps = { type: "object", ...base(description, opts), additionalProperties: values.props };
  if (opts.maxProperties !== undefined) p.maxProperties = opts.maxProperties;
  return node(p, opts.rules, { additionalProperties: values });
}

interface ArrayOptions extends Common<unknown[]> {
  maxItems: number;
  minItems?: number;
  listType?: "atomic" | "set" | "map";
  mapKeys?: readonly string[];
}

/** A list; `maxItems` is mandatory so CEL cost estimates stay bounded. */
export function array<T>(description: string, items: Schema<T>, opts: ArrayOptions): Schema<T[]> {
  const p: JSONSchemaProps = { type: "array", ...base(description, opts), items: items.props, maxItems: opts.maxItems };
  if (opts.minItems !== undefined) p.minItems = opts.minItems;
  if (opts.listType !== undefined) p["x-kubernetes-list-type"] = opts.listType;
  if (opts.mapKeys !== undefined) p["x-kubernetes-list-map-keys"] = [...opts.mapKeys];
  return node(p, opts.rules, { items });
}

/** Declares a CEL rule together with its TypeScript mirror; `S` names the type of `self` for the mirror. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- callers pass S explicitly
export function rule<S>(spec: Omit<Rule, "check"> & { check: (self: S) => boolean }): Rule {
  return spec;
}

/** A CEL string literal that holds `text` exactly: backslashes and single quotes escaped. */
export function celString(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * The CEL rule for a grammar rule over a string node (see serving-image/src/grammar.ts): the API
 * server runs its patterns with RE2, the runtime validator and the serving image with the same text
 * in JavaScript.
 */
export function patternRule(p: PatternRule, extra: Pick<Rule, "fieldPath" | "reason"> = {}): Rule {
  const tests: string[] = [];
  if (p.require !== undefined) tests.push(`self.matches(${celString(p.require)})`);
  if (p.forbid !== undefined) tests.push(`!self.matches(${celString(p.forbid)})`);
  const body = tests.join(" && ");
  return rule<string>({
    rule: p.when === undefined ? body : `!self.matches(${celString(p.when)}) || (${body})`,
    message: p.message,
    ...extra,
    check: (v) => satisfies(p, v),
  });
}

/**
 * The CRD form of a node: JSONSchemaProps with CEL rules as `x-kubernetes-validations`
 * (without the TypeScript predicates).
 */
export function toOpenAPI(s: Schema<unknown>): JSONSchemaProps {
  const out: JSONSchemaProps = { ...s.props };
  if (s.properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toOpenAPI(v)]));
  }
  if (s.items !== undefined) out.items = toOpenAPI(s.items);
  if (s.additionalProperties !== undefined) out.additionalProperties = toOpenAPI(s.additionalProperties);
  if (s.rules.length > 0) {
    out["x-kubernetes-validations"] = s.rules.map((r) => {
      const v: { rule: string; message: string; fieldPath?: string; reason?: string } = {
        rule: r.rule,
        message: r.message,
      };
      if (r.fieldPath !== undefined) v.fieldPath = r.fieldPath;
      if (r.reason !== undefined) v.reason = r.reason;
      return v;
    });
  }
  return out;
}
