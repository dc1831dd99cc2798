/**
 * The ModelDeployment CustomResourceDefinition, built from the schema in model-deployment.ts, and the
 * top-level ModelDeployment type and validator.
 */
import { stringify } from "yaml";
import { specSchema, statusSchema, type ModelDeploymentSpec, type ModelDeploymentStatus } from "./model-deployment.ts";
import {
  API_VERSION,
  CATEGORIES,
  CRD_NAME,
  DNS1035_LABEL_PATTERN,
  GROUP,
  KIND,
  LIST_KIND,
  MAX_NAME_LENGTH,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
} from "./names.ts";
import { object, rule, string, toOpenAPI, type JSONSchemaProps, type Schema } from "./schema.ts";
import { applyDefaults, validateAgainst, type FieldError } from "./validate.ts";

/** The parts of metav1.ObjectMeta the operator reads or writes, as the API server returns them (JSON). */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  // Typed as @kubernetes/client-node types them, so a ModelDeployment is a KubernetesObject; on the
  // wire (and in informer caches) they are RFC 3339 strings — only test them for presence.
  creationTimestamp?: Date;
  deletionTimestamp?: Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
}

export interface ModelDeployment {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: ModelDeploymentSpec;
  status?: ModelDeploymentStatus;
}

// metadata is validated by the API server itself; a CRD may only restrict name and generateName.
// `name` is declared so the name rules below can report on `metadata.name` (a CEL fieldPath must
// exist in the schema). The runtime validator treats this node as free-form (no child schemas).
const metadataSchema: Schema<ObjectMeta> = {
  props: { type: "object", properties: { name: { type: "string" } } },
  rules: [],
};

/** The top-level schema: apiVersion, kind, metadata, spec, status, plus the rules on the object's name. */
export const modelDeploymentSchema = object(
  "ModelDeployment serves a TensorFlow.js model over HTTP (TF Serving REST and Open Inference Protocol), " +
    "on GPUs or CPUs, at a fixed size or autoscaled from Prometheus metrics.",
  {
    apiVersion: string("Versioned schema of this object: maas.dev/v1alpha1.", { maxLength: 64 }),
    kind: string("ModelDeployment.", { maxLength: 64 }),
    metadata: metadataSchema,
    spec: specSchema,
    status: statusSchema,
  },
  {
    required: ["spec"],
    rules: [
      rule<{ metadata: ObjectMeta }>({
        rule: `self.metadata.name.size() <= ${MAX_NAME_LENGTH}`,
        message:
          `metadata.name must be at most ${MAX_NAME_LENGTH} characters: the Deployment's pods are named ` +
          "<name>-<10-character hash>-<5 characters> and must stay within 63",
        fieldPath: ".metadata.name",
        check: (o) => (o.metadata.name ?? "").length <= MAX_NAME_LENGTH,
      }),
      rule<{ metadata: ObjectMeta }>({
        rule: `self.metadata.name.matches('${DNS1035_LABEL_PATTERN}')`,
        message:
          "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): " +
          "it is also the name of the Service",
        fieldPath: ".metadata.name",
        check: (o) => o.metadata.name === undefined || new RegExp(DNS1035_LABEL_PATTERN).test(o.metadata.name),
      }),
    ],
  },
);

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  priority?: number;
}

const printerColumns: PrinterColumn[] = [
  {
    name: "Ready",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: "Status of the Ready condition.",
  },
  { name: "Replicas", type: "string", jsonPath: ".status.replicasSummary", description: "Ready/desired replicas." },
  { name: "GPU", type: "integer", jsonPath: ".spec.resources.gpu.count", description: "GPUs per replica." },
  {
    name: "Metric",
    type: "number",
    jsonPath: ".status.autoscaling.currentMetric",
    description: "Current autoscaling metric per replica.",
  },
  {
    name: "Target",
    type: "number",
    jsonPath: ".spec.autoscaling.metric.target",
    description: "Autoscaling target per replica.",
  },
  {
    name: "Endpoint",
    type: "string",
    jsonPath: ".status.endpoint",
    description: "In-cluster URL of the model server.",
  },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation." },
  {
    name: "Product",
    type: "string",
    jsonPath: ".spec.resources.gpu.product",
    description: "GPU product the pods require.",
    priority: 1,
  },
  {
    name: "Type",
    type: "string",
    jsonPath: ".spec.autoscaling.metric.type",
    description: "Autoscaling metric type.",
    priority: 1,
  },
  {
    name: "Reason",
    type: "string",
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    description: "Reason of the Ready condition.",
    priority: 1,
  },
];

/** The CRD's validation schema (structural OpenAPI v3), freshly built on each call. */
export function openAPISchema(): JSONSchemaProps {
  return toOpenAPI(modelDeploymentSchema);
}

/** The CustomResourceDefinition as a plain object, ready to apply or serialise. */
export function crdObject(): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: CRD_NAME },
    spec: {
      group: GROUP,
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: PLURAL,
        singular: SINGULAR,
        shortNames: [...SHORT_NAMES],
        categories: [...CATEGORIES],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: ".spec.replicas",
              statusReplicasPath: ".status.replicas",
              labelSelectorPath: ".status.selector",
            },
          },
          additionalPrinterColumns: printerColumns,
          schema: { openAPIV3Schema: openAPISchema() },
        },
      ],
    },
  };
}

/** First line of every generated CRD file. */
export const GENERATED_HEADER =
  "# Generated by scripts/generate-crds.ts from operator/src/api (npm run generate). Do not edit.";

/** The CRD as the YAML committed to crds/ and the chart: header comment, then the document. */
export function crdYaml(): string {
  return `${GENERATED_HEADER}\n${stringify(crdObject(), { lineWidth: 0 })}`;
}

export type ValidationResult =
  | { readonly ok: true; readonly value: ModelDeployment; readonly errors: readonly [] }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/**
 * Checks an object as the API server would on create (types, enums, bounds, unknown fields, CEL rules)
 * after applying the schema's defaults to a copy; the input is not modified.
 */
export function validateModelDeployment(obj: unknown): ValidationResult {
  const errors: FieldError[] = [];
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    return { ok: false, errors: [{ field: "", message: "a ModelDeployment must be an object" }] };
  }
  const copy = applyDefaults(modelDeploymentSchema, structuredClone(obj) as Record<string, unknown>);
  if (copy.apiVersion !== API_VERSION) errors.push({ field: "apiVersion", message: `must be "${API_VERSION}"` });
  if (copy.kind !== KIND) errors.push({ field: "kind", message: `must be "${KIND}"` });
  const meta = copy.metadata;
  if (typeof meta !== "object" || meta === null || typeof (meta as ObjectMeta).name !== "string") {
    if (typeof meta !== "object" || meta === null || typeof (meta as ObjectMeta).generateName !== "string") {
      errors.push({ field: "metadata.name", message: "Required value: name or generateName is required" });
    }
  }
  if (errors.length === 0) errors.push(...validateAgainst(modelDeploymentSchema, copy));
  return errors.length === 0
    ? { ok: true, value: copy as unknown as ModelDeployment, errors: [] }
    : { ok: false, errors };
}

/** Returns a copy of `obj` with the API server's defaults filled in (what a read-back would show). */
export function withDefaults<T extends object>(obj: T): T {
  return applyDefaults(modelDeploymentSchema, structuredClone(obj));
}
