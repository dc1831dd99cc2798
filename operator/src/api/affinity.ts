/**
 * core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity), the schema of
 * `spec.scheduling.affinity`: the fields, required fields and enums of the Kubernetes API
 * (`kubectl explain pod.spec.affinity`), plus CEL rules for what the API server checks when it
 * validates a Pod (ValidateNodeSelectorRequirement, ValidateLabelSelectorRequirement,
 * validatePodAffinityTerm in k8s.io/kubernetes/pkg/apis/core/validation, v1.34). With it, a typo
 * such as `nodeAfinity` is refused by `kubectl apply` naming the field, and an affinity the
 * Deployment's pods could not have is refused before the operator builds them.
 *
 * Lists carry a maxItems (Kubernetes has none) so the API server can bound the cost of the rules.
 */
import { labelKey, labelMap, labelValue } from "./label-syntax.ts";
import { DNS1123_LABEL_PATTERN, DNS1123_SUBDOMAIN_PATTERN } from "./names.ts";
import { array, integer, object, rule, string, stringEnum, type Rule } from "./schema.ts";

const MAX_TERMS = 16;
const MAX_REQUIREMENTS = 16;
const MAX_VALUES = 64;

const values = (description: string) =>
  array(description, labelValue("A label value."), { maxItems: MAX_VALUES, listType: "atomic" });

interface Requirement {
  operator: string;
  values?: string[];
}

const valueCount = (r: Requirement): number => r.values?.length ?? 0;
const celValueCount = "(has(self.values) ? size(self.values) : 0)";

/** In and NotIn need values; Exists and DoesNotExist take none (as for node and label selectors alike). */
const setOperatorRules: readonly Rule[] = [
  rule<Requirement>({
    rule: `!(self.operator in ['In', 'NotIn']) || ${celValueCount} > 0`,
    message: "values must be given when operator is In or NotIn",
    fieldPath: ".values",
    reason: "FieldValueRequired",
    check: (r) => !["In", "NotIn"].includes(r.operator) || valueCount(r) > 0,
  }),
  rule<Requirement>({
    rule: `!(self.operator in ['Exists', 'DoesNotExist']) || ${celValueCount} == 0`,
    message: "values must be empty when operator is Exists or DoesNotExist",
    fieldPath: ".values",
    reason: "FieldValueForbidden",
    check: (r) => !["Exists", "DoesNotExist"].includes(r.operator) || valueCount(r) === 0,
  }),
];

/** The integers the scheduler can compare a node label with (strconv.ParseInt), kept to 18 digits. */
const INTEGER_PATTERN = "^-?[0-9]{1,18}$";

const nodeSelectorRequirement = object(
  "A requirement on a node label: key, operator and values.",
  {
    key: labelKey("The node label key the requirement applies to.", "key"),
    operator: stringEnum(
      "In, NotIn, Exists, DoesNotExist, Gt or Lt (Gt and Lt compare the label with one integer value).",
      ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] as const,
    ),
    values: values(
      "Label values: at least one for In and NotIn, none for Exists and DoesNotExist, one integer for Gt and Lt.",
    ),
  },
  {
    required: ["key", "operator"],
    rules: [
      ...setOperatorRules,
      rule<Requirement>({
        rule:
          `!(self.operator in ['Gt', 'Lt']) || ` +
          `(${celValueCount} == 1 && self.values[0].matches('${INTEGER_PATTERN}'))`,
        message: 'operator Gt and Lt compare with exactly one value, an integer such as "4"',
        fieldPath: ".values",
        check: (r) =>
          !["Gt", "Lt"].includes(r.operator) ||
          (valueCount(r) === 1 && new RegExp(INTEGER_PATTERN).test(r.values?.[0] ?? "")),
      }),
    ],
  },
);

/** matchFields: Kubernetes knows one node field, metadata.name, compared with exactly one node name. */
const nodeFieldRequirement = object(
  "A requirement on a node field: only metadata.name, with operator In or NotIn and one node name.",
  {
    key: stringEnum("The node field: metadata.name.", ["metadata.name"] as const),
    operator: stringEnum("In or NotIn.", ["In", "NotIn"] as const),
    values: array(
      "Exactly one node name.",
      string("A node name.", { maxLength: 253, pattern: DNS1123_SUBDOMAIN_PATTERN }),
      { maxItems: 1, minItems: 1, listType: "atomic" },
    ),
  },
  { required: ["key", "operator", "values"] },
);

const nodeSelectorTerm = (description: string) =>
  object(description, {
    matchExpressions: array("Requirements on node labels, ANDed.", nodeSelectorRequirement, {
      maxItems: MAX_REQUIREMENTS,
      listType: "atomic",
    }),
    matchFields: array("Requirements on node fields, ANDed.", nodeFieldRequirement, {
      maxItems: MAX_REQUIREMENTS,
      listType: "atomic",
    }),
  });

const nodeAffinity = object("Node affinity scheduling rules for the pods.", {
  requiredDuringSchedulingIgnoredDuringExecution: object(
    "Nodes the pods may run on: the pods are only scheduled where one of the terms matches.",
    {
      nodeSelectorTerms: array(
        "Node selector terms, ORed; at least one.",
        nodeSelectorTerm("Requirements ANDed; an empty term matches no node."),
        { maxItems: MAX_TERMS, minItems: 1, listType: "atomic" },
      ),
    },
    { required: ["nodeSelectorTerms"] },
  ),
  preferredDuringSchedulingIgnoredDuringExecution: array(
    "Nodes the scheduler prefers: the node with the highest sum of the weights of matching terms wins.",
    object(
      "A weighted node selector term.",
      {
        weight: integer("Weight of the term, from 1 to 100.", { minimum: 1, maximum: 100, format: "int32" }),
        preference: nodeSelectorTerm("The node selector term, with its requirements ANDed."),
      },
      { required: ["weight", "preference"] },
    ),
    { maxItems: MAX_TERMS, listType: "atomic" },
  ),
});

const labelSelectorRequirement = object(
  "A requirement on a label: key, operator and values.",
  {
    key: labelKey("The label key the requirement applies to.", "key"),
    operator: stringEnum("In, NotIn, Exists or DoesNotExist.", ["In", "NotIn", "Exists", "DoesNotExist"] as const),
    values: values("Label values: at least one for In and NotIn, none for Exists and DoesNotExist."),
  },
  { required: ["key", "operator"], rules: setOperatorRules },
);

const labelSelector = (description: string) =>
  object(description, {
    matchLabels: labelMap("Labels that must all be present with these values.", "matchLabels", 32),
    matchExpressions: array("Requirements on labels, ANDed.", labelSelectorRequirement, {
      maxItems: MAX_REQUIREMENTS,
      listType: "atomic",
    }),
  });

const labelKeys = (description: string, what: string) =>
  array(description, labelKey("A pod label key.", what), { maxItems: MAX_REQUIREMENTS, listType: "atomic" });

interface AffinityTerm {
  labelSelector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string }[] };
  matchLabelKeys?: string[];
  mismatchLabelKeys?: string[];
}

/** Keys the term's label selector already names (matchLabels and matchExpressions). */
const selectorKeys = (t: AffinityTerm): string[] => [
  ...Object.keys(t.labelSelector.matchLabels ?? {}),
  ...(t.labelSelector.matchExpressions ?? []).map((e) => e.key),
];
const celInSelector = (k: string): string =>
  `(has(self.labelSelector.matchLabels) && ${k} in self.labelSelector.matchLabels) || ` +
  `(has(self.labelSelector.matchExpressions) && self.labelSelector.matchExpressions.exists(e, e.key == ${k}))`;

const podAffinityTerm = object(
  "Pods (those matching labelSelector in the given namespaces) to run in the same topology domain as " +
    "(affinity) or away from (anti-affinity); the domain is the value of the node label topologyKey.",
  {
    labelSelector: labelSelector(
      "The pods this term is about ({} is every pod in the namespaces). Required here: in a Pod spec a term " +
        "without it matches no pod, which the API server only warns about.",
    ),
    namespaceSelector: labelSelector(
      "Namespaces, by label, whose pods the term considers (with namespaces); {} means all namespaces.",
    ),
    namespaces: array(
      "Namespaces whose pods the term considers; with neither this nor namespaceSelector, this object's namespace.",
      string("A namespace name.", { maxLength: 63, pattern: DNS1123_LABEL_PATTERN }),
      { maxItems: 32, listType: "atomic" },
    ),
    topologyKey: labelKey(
      "Node label whose value defines the topology domain (e.g. kubernetes.io/hostname, topology.kubernetes.io/zone).",
      "topologyKey",
    ),
    matchLabelKeys: labelKeys(
      "Label keys of the serving pod whose values are added to labelSelector as key in (value); not one of " +
        "labelSelector's own keys.",
      "matchLabelKeys",
    ),
    mismatchLabelKeys: labelKeys(
      "Label keys of the serving pod whose values are added to labelSelector as key notin (value); not one of " +
        "labelSelector's own keys.",
      "mismatchLabelKeys",
    ),
  },
  {
    required: ["labelSelector", "topologyKey"],
    rules: [
      rule<AffinityTerm>({
        rule:
          "!has(self.matchLabelKeys) || !has(self.mismatchLabelKeys) || " +
          "!self.matchLabelKeys.exists(k, k in self.mismatchLabelKeys)",
        message: "a key may not be in both matchLabelKeys and mismatchLabelKeys",
        fieldPath: ".matchLabelKeys",
        check: (t) => !(t.matchLabelKeys ?? []).some((k) => (t.mismatchLabelKeys ?? []).includes(k)),
      }),
      rule<AffinityTerm>({
        rule:
          `(!has(self.matchLabelKeys) || !self.matchLabelKeys.exists(k, ${celInSelector("k")})) && ` +
          `(!has(self.mismatchLabelKeys) || !self.mismatchLabelKeys.exists(k, ${celInSelector("k")}))`,
        message: "matchLabelKeys and mismatchLabelKeys may not name a key that labelSelector already names",
        fieldPath: ".labelSelector",
        check: (t) =>
          ![...(t.matchLabelKeys ?? []), ...(t.mismatchLabelKeys ?? [])].some((k) => selectorKeys(t).includes(k)),
      }),
    ],
  },
);

const podAffinityRules = (what: string, together: string) =>
  object(`Pod ${what} scheduling rules: ${together}.`, {
    requiredDuringSchedulingIgnoredDuringExecution: array(
      "Terms every node the pods run on must satisfy (all of them).",
      podAffinityTerm,
      { maxItems: MAX_TERMS, listType: "atomic" },
    ),
    preferredDuringSchedulingIgnoredDuringExecution: array(
      "Weighted terms the scheduler prefers: the node with the highest sum of the weights of matching terms wins.",
      object(
        "A weighted pod affinity term.",
        {
          weight: integer("Weight of the term, from 1 to 100.", { minimum: 1, maximum: 100, format: "int32" }),
          podAffinityTerm,
        },
        { required: ["weight", "podAffinityTerm"] },
      ),
      { maxItems: MAX_TERMS, listType: "atomic" },
    ),
  });

/** core/v1 Affinity. */
export const affinity = object(
  "Node affinity, pod affinity and pod anti-affinity of the serving pods, exactly as in a Pod spec " +
    "(core/v1 Affinity; kubectl explain pod.spec.affinity).",
  {
    nodeAffinity,
    podAffinity: podAffinityRules("affinity", "run near pods like these"),
    podAntiAffinity: podAffinityRules("anti-affinity", "run away from pods like these"),
  },
);
