import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { crdObject, crdYaml, openAPISchema } from "../../operator/src/api/index.ts";
import type { JSONSchemaProps } from "../../operator/src/api/schema.ts";
import { CRD_ANNOTATION_BUDGET_BYTES } from "../unit/api/corpus.ts";

/**
 * Finds the constructs the API server rejects in a CRD schema, or that would make it non-structural
 * (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema),
 * plus this project's own rules: a description on every field and bounded strings/lists under CEL rules.
 */
function findViolations(schema: unknown, path = "<root>", underRule = false): string[] {
  const out: string[] = [];
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return [`${path}: not a schema object`];
  const s = schema as Record<string, unknown> & JSONSchemaProps;
  const intOrString = s["x-kubernetes-int-or-string"] === true;
  const preserve = s["x-kubernetes-preserve-unknown-fields"] === true;
  const hasRules = (s["x-kubernetes-validations"]?.length ?? 0) > 0;
  const ruled = underRule || hasRules;
  for (const banned of [
    "$ref",
    "patternProperties",
    "definitions",
    "dependencies",
    "not",
    "oneOf",
    "allOf",
    "additionalItems",
    "id",
    "$schema",
    "uniqueItems",
  ]) {
    if (banned in s) out.push(`${path}: ${banned} is not allowed`);
  }
  if (s.type === undefined && !intOrString) out.push(`${path}: missing type`);
  if (s.anyOf !== undefined) {
    const typesOnly = s.anyOf.every(
      (a) => Object.keys(a).length === 1 && (a.type === "integer" || a.type === "string"),
    );
    if (!intOrString || !typesOnly) out.push(`${path}: anyOf is only allowed as the int-or-string pattern`);
  }
  if (
    JSON.stringify({ ...s, properties: undefined, items: undefined, additionalProperties: undefined }).includes(
      '"const"',
    )
  ) {
    out.push(`${path}: const is not allowed`);
  }
  if (s.properties !== undefined && s.additionalProperties !== undefined) {
    out.push(`${path}: additionalProperties together with properties`);
  }
  if ((s.additionalProperties as unknown) === false) out.push(`${path}: additionalProperties: false`);
  if (s.type === "array" && s.items === undefined) out.push(`${path}: array without items`);
  if (s.type === "array" && ruled && s.maxItems === undefined)
    out.push(`${path}: list read by a CEL rule without maxItems`);
  // metadata.name is bounded by the API server itself (253), which CEL cost estimation knows.
  const serverBounded = path === "<root>.metadata.name";
  if (
    s.type === "string" &&
    ruled &&
    !serverBounded &&
    s.maxLength === undefined &&
    s.enum === undefined &&
    s.format === undefined
  ) {
    out.push(`${path}: string read by a CEL rule without maxLength`);
  }
  if (path !== "<root>" && path !== "<root>.metadata" && path !== "<root>.metadata.name" && !s.description) {
    out.push(`${path}: missing description`);
  }
  if (s["x-kubernetes-list-type"] === "map") {
    const keys = s["x-kubernetes-list-map-keys"] ?? [];
    if (keys.length === 0) out.push(`${path}: list-type map without list-map-keys`);
    for (const k of keys) {
      if (!s.items?.required?.includes(k)) out.push(`${path}: list-map key ${k} is not required in the items`);
    }
  }
  if (preserve && s.type !== "object") out.push(`${path}: x-kubernetes-preserve-unknown-fields on a non-object`);
  for (const r of s["x-kubernetes-validations"] ?? []) {
    if (!r.message) out.push(`${path}: CEL rule without message: ${r.rule}`);
    if (r.fieldPath !== undefined) {
      let target: JSONSchemaProps | undefined = s;
      for (const part of r.fieldPath.replace(/^\./, "").split(".")) target = target?.properties?.[part];
      if (target === undefined) out.push(`${path}: fieldPath ${r.fieldPath} names no field`);
    }
  }
  for (const [k, v] of Object.entries(s.properties ?? {})) out.push(...findViolations(v, `${path}.${k}`, ruled));
  if (s.items !== undefined) out.push(...findViolations(s.items, `${path}[]`, ruled));
  if (s.additionalProperties !== undefined && typeof s.additionalProperties === "object") {
    out.push(...findViolations(s.additionalProperties, `${path}{}`, ruled));
  }
  return out;
}

describe("the CRD schema is structural", () => {
  it("has no construct the API server rejects, and a description on every field", () => {
    assert.deepEqual(findViolations(openAPISchema()), []);
  });

  it("restricts only metadata.name inside metadata", () => {
    assert.deepEqual(openAPISchema().properties?.metadata, {
      type: "object",
      properties: { name: { type: "string" } },
    });
  });

  it("is far below the 256 KiB annotation limit that client-side kubectl apply needs", () => {
    const bytes = Buffer.byteLength(crdYaml());
    const annotation = Buffer.byteLength(JSON.stringify(crdObject()));
    console.log(`      CRD: ${bytes} bytes of YAML, ${annotation} bytes as the last-applied annotation (limit 262144)`);
    assert.ok(annotation < CRD_ANNOTATION_BUDGET_BYTES, `${annotation} bytes`);
  });

  it("declares the status and scale subresources and the names users type", () => {
    const spec = crdObject().spec as {
      names: { shortNames: string[]; categories: string[] };
      versions: { subresources: unknown; additionalPrinterColumns: { name: string; priority?: number }[] }[];
    };
    assert.deepEqual(spec.names.shortNames, ["md"]);
    assert.deepEqual(spec.names.categories, ["maas"]);
    assert.deepEqual(spec.versions[0]?.subresources, {
      status: {},
      scale: {
        specReplicasPath: ".spec.replicas",
        statusReplicasPath: ".status.replicas",
        labelSelectorPath: ".status.selector",
      },
    });
    assert.deepEqual(
      spec.versions[0]?.additionalPrinterColumns.filter((c) => !c.priority).map((c) => c.name),
      ["Ready", "Replicas", "GPU", "Metric", "Target", "Endpoint", "Age"],
    );
  });
});

describe("the structural checker", () => {
  // The checker must catch what it claims to, or the test above proves nothing.
  const bad: { what: string; schema: unknown; finds: RegExp }[] = [
    {
      what: "$ref",
      schema: { type: "object", description: "d", properties: { a: { $ref: "#/x", description: "d" } } },
      finds: /\$ref/,
    },
    {
      what: "patternProperties",
      schema: { type: "object", description: "d", patternProperties: {} },
      finds: /patternProperties/,
    },
    {
      what: "anyOf with const",
      schema: {
        type: "object",
        description: "d",
        properties: { a: { description: "d", type: "string", anyOf: [{ const: "x" }] } },
      },
      finds: /anyOf|const/,
    },
    {
      what: "oneOf",
      schema: {
        type: "object",
        description: "d",
        properties: { a: { description: "d", type: "string", oneOf: [{ type: "string" }] } },
      },
      finds: /oneOf/,
    },
    { what: "allOf with const", schema: { type: "string", description: "d", allOf: [{ const: "x" }] }, finds: /allOf/ },
    {
      what: "a missing type",
      schema: { type: "object", description: "d", properties: { a: { description: "d" } } },
      finds: /missing type/,
    },
    {
      what: "additionalProperties with properties",
      schema: {
        type: "object",
        description: "d",
        properties: {},
        additionalProperties: { type: "string", description: "d" },
      },
      finds: /together/,
    },
    {
      what: "a missing description",
      schema: { type: "object", properties: { a: { type: "string" } } },
      finds: /missing description/,
    },
    {
      what: "an unbounded string under a rule",
      schema: {
        type: "object",
        description: "d",
        "x-kubernetes-validations": [{ rule: "true", message: "m" }],
        properties: { a: { type: "string", description: "d" } },
      },
      finds: /maxLength/,
    },
    {
      what: "a fieldPath to nowhere",
      schema: {
        type: "object",
        description: "d",
        "x-kubernetes-validations": [{ rule: "true", message: "m", fieldPath: ".b" }],
        properties: {},
      },
      finds: /names no field/,
    },
  ];
  for (const b of bad) {
    it(`reports ${b.what}`, () => {
      const v = findViolations(b.schema);
      assert.ok(
        v.some((m) => b.finds.test(m)),
        JSON.stringify(v),
      );
    });
  }
});
