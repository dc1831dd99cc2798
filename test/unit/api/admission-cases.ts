/**
 * ModelDeployments near every boundary of what the API admits, for the check that admission equals
 * run time: whatever the API server accepts, the pod's fetch and serve steps and the Deployment the
 * operator builds accept too (test/integration/api/admission-runtime.test.ts, against the real API
 * server, and admission-cases.test.ts, against the runtime validator). Pure and seeded: the same seed
 * gives the same cases, so a failure can be replayed.
 *
 * Each case varies one field from a valid spec (one factor at a time), so a refusal must name that
 * field; the seeded random cases combine several parts of one value (a URI from random host, port,
 * path, query), never several fields.
 */
import type { V1Container, V1Deployment, V1EnvVar } from "@kubernetes/client-node";
import type { Desired } from "../../../operator/src/reconcile/labels.ts";
import type { ModelDeployment } from "../../../operator/src/api/index.ts";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { readServeConfig } from "../../../serving-image/src/config.ts";
import { parseFetchConfig } from "../../../serving-image/src/fetch/config.ts";
import { prng } from "../controller/fake-clock.ts";
import { manifest, prefixedKey } from "./corpus.ts";

type Json = Record<string, unknown>;

export interface AdmissionCase {
  readonly what: string;
  /** The field the case varies: when the API server refuses the spec, its message must name this field. */
  readonly field: string;
  /**
   * Set when the value's grammar is one the serving image shares with the CRD (serving-image/src/grammar.ts):
   * then the image's parser must refuse exactly what the API server refuses, not only accept what it accepts.
   */
  readonly owned?: "fetch" | "serve";
  readonly manifest: Json;
}

/** Whitespace JavaScript's \s knows and RE2's \s does not (and the ASCII ones both know). */
export const SPACES = ["\u00a0", "\u1680", "\u2000", "\u2028", "\u2029", "\u202f", "\u3000", "\ufeff", "\u0085"];

const BASE_URI = "https://models.example.com/m/model.json";
const model = (m: Json = {}): Json => ({ uri: BASE_URI, ...m });

// ---------------------------------------------------------------------------------------------
// Model URIs
// ---------------------------------------------------------------------------------------------

const HOSTS = [
  "models.example.com",
  "h",
  "MODELS.Example.COM",
  `${"a".repeat(63)}.example.com`,
  `${"a".repeat(64)}.example.com`,
  "xn--bcher-kva.example",
  "a-b.example.com",
  "-a.example.com",
  "a-.example.com",
  "a_b.example.com",
  "a..b.example.com",
  "models.example.com.",
  "example.123",
  "example.3com",
  "0x7f.1",
  "10.0.0.7",
  "255.255.255.255",
  "256.0.0.1",
  "010.0.0.1",
  "1.2.3",
  "[::1]",
  "[::]",
  "[2001:db8::8a2e:370:7334]",
  "[2001:db8:0:0:0:0:2:1]",
  "[::ffff:10.0.0.7]",
  "[1::2::3]",
  "[::ffff:010.0.0.7]",
  "[12345::1]",
  "[fe80::1%25eth0]",
  "",
];
const PORTS = ["", ":1", ":80", ":8080", ":65535", ":0", ":65536", ":080", ":", ":99999", ":-1"];
const USERINFO = ["user@", "user:pass@", ":@", "user:p%40ss@"];
/** Path segments (and file names) around every rule of the grammar. */
const SEGMENTS = [
  "m",
  "...",
  ".a",
  "a.",
  "~user",
  "a+b=c;d,e",
  "v1:model",
  "a@b",
  "a'b",
  "a!b$c&d(e)f*",
  "a%20b",
  "%C3%A9t%C3%A9",
  "%E2%82%AC",
  "%F0%9F%98%80",
  "a%2eb",
  "a%25b",
  "a%3Fb",
  ".",
  "..",
  "%2e",
  "%2E%2e",
  ".%2e",
  "",
  "a%2Fb",
  "a%2fb",
  "a%5Cb",
  "a%00b",
  "a%1Fb",
  "a%7Fb",
  "a%ZZb",
  "a%2",
  "a%C0%80",
  "a%C3",
  "a%ED%A0%80",
  "a%F4%90%80%80",
  "a%E2%80%A8",
  "a b",
  "a\\b",
  "a|b",
  "a{b}",
  "a[b]",
  "a^b",
  "a`b",
  'a"b',
  "a<b>",
  "é",
  ...SPACES.map((s) => `a${s}b`),
  "a\tb",
];
/** The segments that decide a path's fate, for the schemes whose paths go through the same rule as https. */
const CORE_SEGMENTS = [
  "m",
  "...",
  "v1:model",
  "a%20b",
  ".",
  "..",
  "%2E%2e",
  "",
  "a%2Fb",
  "a%5Cb",
  "a%00b",
  "a b",
  "a\\b",
  "a\u00a0b",
];
const FILES = ["model.json", "MODEL.JSON", "model.Json", "weights.bin", "model.json.bak", "m.json"];
const QUERIES = [
  "?",
  "?sig=abc&X-Amz-Expires=60",
  "?a=%2F%2B",
  "?a=b/c?d",
  "?a=%zz",
  "?a=b c",
  "?a=|",
  "?a='b'",
  "?a=\u00a0",
];
const FRAGMENTS = ["#", "#x", "#a/b?c", "#a b", "#%ZZ"];

interface UriCase {
  what: string;
  uri: string;
  format?: string;
}

/** A URI per boundary, one part varied at a time from a valid URI of each scheme. */
function uriBoundaries(): UriCase[] {
  const out: UriCase[] = [];
  const add = (what: string, uri: string, format?: string): void => {
    out.push({ what, uri, ...(format === undefined ? {} : { format }) });
  };
  for (const h of HOSTS) add(`host ${JSON.stringify(h)}`, `https://${h}/m/model.json`);
  for (const p of PORTS) add(`port ${JSON.stringify(p)}`, `http://models.example.com${p}/m/model.json`);
  for (const u of USERINFO) add(`userinfo ${JSON.stringify(u)}`, `https://${u}models.example.com/m/model.json`);
  for (const s of SEGMENTS)
    add(`http path segment ${JSON.stringify(s)}`, `https://models.example.com/a/${s}/model.json`);
  for (const s of CORE_SEGMENTS) {
    add(`http file name ${JSON.stringify(s)}`, `https://models.example.com/a/${s}.json`);
    add(`s3 key segment ${JSON.stringify(s)}`, `s3://models/a/${s}/model.json`);
    add(`pvc path segment ${JSON.stringify(s)}`, `pvc://models/a/${s}/b`);
    add(`file path segment ${JSON.stringify(s)}`, `file:///srv/${s}/model.json`);
  }
  for (const f of FILES) {
    add(`https file ${f}`, `https://models.example.com/m/${f}`);
    add(`s3 object ${f}`, `s3://models/m/${f}`);
  }
  for (const f of ["", "/", "//", "/m/"]) add(`https path ${JSON.stringify(f)}`, `https://models.example.com${f}`);
  for (const q of QUERIES) add(`query ${JSON.stringify(q)}`, `https://models.example.com/m/model.json${q}`);
  for (const q of QUERIES.slice(0, 3)) {
    add(`s3 query ${JSON.stringify(q)}`, `s3://models/m/model.json${q}`);
    add(`pvc query ${JSON.stringify(q)}`, `pvc://models/m${q}`);
  }
  for (const f of FRAGMENTS) add(`fragment ${JSON.stringify(f)}`, `https://models.example.com/m/model.json${f}`);
  for (const b of ["abc", "a".repeat(63), "a".repeat(64), "ab", "Abc", "a.b.c", "a-b", "-ab", "ab-", "a_b", "a@b"]) {
    add(`s3 bucket ${JSON.stringify(b)}`, `s3://${b}/m/model.json`);
  }
  for (const k of ["", "/", "m/", "m//model.json"]) add(`s3 key ${JSON.stringify(k)}`, `s3://models/${k}`);
  for (const c of ["models", "a".repeat(63), "a".repeat(64), "Models", "m_s", "-m", "m-", "m.s", ""]) {
    add(`pvc claim ${JSON.stringify(c)}`, `pvc://${c}/m`);
  }
  for (const p of ["", "/", "//", "/m/", "/m//", "/m/./x", "/m/model.json"]) {
    add(`pvc path ${JSON.stringify(p)}`, `pvc://models${p}`);
  }
  for (const p of ["", "/", "//srv", "/srv/", "/srv//m", "/srv/m/"]) {
    add(`file path ${JSON.stringify(p)}`, `file://${p}`, "tf-saved-model");
  }
  for (const h of ["localhost", "host", "", "127.0.0.1"]) add(`file host ${JSON.stringify(h)}`, `file://${h}/srv/m`);
  for (const s of ["HTTPS://", "Https://", "http:/", "https:", "//", "ftp://", "gs://", "S3://", "PVC://", "file:/"]) {
    add(`scheme spelled ${JSON.stringify(s)}`, `${s}models.example.com/m/model.json`);
  }
  for (const sp of [...SPACES, " ", "\t", "\n"]) add(`trailing ${JSON.stringify(sp)}`, `${BASE_URI}${sp}`);
  for (const sp of ["\u00a0", "\u3000", " ", "\n"]) add(`leading ${JSON.stringify(sp)}`, `${sp}${BASE_URI}`);
  add("a uri of 2048 characters", `https://models.example.com/${"m".repeat(2048 - 38)}/model.json`);
  add("a uri of 2049 characters", `https://models.example.com/${"m".repeat(2049 - 38)}/model.json`);
  // Formats against sources: a SavedModel is a directory, a TF.js model behind a remote URI its model.json.
  add("a SavedModel on a pvc", "pvc://models/saved", "tf-saved-model");
  add("a SavedModel in a file directory", "file:///srv/saved/", "tf-saved-model");
  add("a SavedModel over https", "https://models.example.com/saved/saved_model.pb", "tf-saved-model");
  add("a SavedModel in s3", "s3://models/saved/saved_model.pb", "tf-saved-model");
  add("a tfjs-layers model.json on a pvc", "pvc://models/m/model.json", "tfjs-layers");
  add("a tfjs model as a single pvc file", "pvc://models/m/weights.bin", "tfjs-graph");
  return out;
}

/** URIs assembled from random parts (seeded), to reach combinations the boundaries above do not list. */
function randomUris(random: () => number, count: number): UriCase[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const path = (): string =>
    Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(SEGMENTS)).join("/") + "/" + pick(FILES);
  const out: UriCase[] = [];
  for (let i = 0; i < count; i++) {
    const scheme = pick(["https", "http", "s3", "pvc", "file"]);
    let uri: string;
    if (scheme === "https" || scheme === "http") {
      const userinfo = random() < 0.1 ? pick(USERINFO) : "";
      const query = random() < 0.3 ? pick(QUERIES) : "";
      const fragment = random() < 0.15 ? pick(FRAGMENTS) : "";
      uri = `${scheme}://${userinfo}${pick(HOSTS)}${pick(PORTS)}/${path()}${query}${fragment}`;
    } else if (scheme === "s3") {
      uri = `s3://${pick(["models", "ml-models.eu", "a".repeat(63)])}/${path()}`;
    } else if (scheme === "pvc") {
      uri = `pvc://${pick(["models", "a".repeat(63)])}/${path()}${random() < 0.2 ? "/" : ""}`;
    } else {
      uri = `file:///${path()}`;
    }
    out.push({ what: `random uri #${i}`, uri, format: pick(["tfjs-graph", "tfjs-layers", "tf-saved-model"]) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Names, versions, quantities
// ---------------------------------------------------------------------------------------------

const SERVED_NAMES = [
  "a",
  "a".repeat(63),
  "a".repeat(64),
  "Sentiment_v2.1-beta",
  "-a",
  "a-",
  "_a",
  "a.",
  "a/b",
  "a:b",
  "a b",
  "a%20b",
  "é",
  ...SPACES.map((s) => `a${s}`),
];
const VERSIONS = [
  "0",
  "3",
  "007",
  "1".repeat(15),
  "9".repeat(15),
  "1".repeat(16),
  "v3",
  "3.1",
  "-1",
  "+1",
  "1e3",
  "0x10",
  " 3",
  "3 ",
  "3\n",
  "\u0663",
  "\uff13",
  ...SPACES.map((s) => `3${s}`),
];
const NAMES = ["a", "a".repeat(46), "a".repeat(47), "abc-123", "Abc", "1abc", "a-", "a.b", "a_b", "a--b"];

/** Quantities around the API server's parser and the whole-bytes rule: suffixes, exponents, signs, fractions. */
const QUANTITIES = [
  "0",
  "1",
  "-1",
  "-0",
  "+1",
  "0.5",
  ".5",
  "1.",
  "1.0",
  "0.001",
  "1e3",
  "1E3",
  "1e+3",
  "1e-3",
  "1e-9",
  "1e-12",
  "1e03",
  "1e4",
  "1e-1",
  "2.5e3",
  "0.1e1",
  "1e15",
  "100n",
  "1n",
  "100u",
  "500m",
  "512m",
  "1000m",
  "1500m",
  "1k",
  "1K",
  "1Ki",
  "1ki",
  "1.5Gi",
  "1.1Gi",
  "0.5Mi",
  "1.0000001Gi",
  "32Ti",
  "33Ti",
  "1Pi",
  "1E",
  "1Ei",
  "1e",
  "1e3.5",
  "1ee3",
  "1Mi5",
  "m",
  "e3",
  "Ki",
  ".",
  "+",
  "1.5.5",
  "0x10",
  "1,5",
  " 1",
  "1 ",
  "1\u00a0",
  "\u0661",
  "",
  "1" + "0".repeat(19),
  "12345678901234567890.5",
];
const INT_QUANTITIES = [0, 1, 4, -1, 2 ** 45, 2 ** 45 + 1];
/** Memory adds the whole-bytes rule: its boundaries are fractions, sub-byte suffixes and the 32Ti cap. */
const MEMORY_QUANTITIES = [
  "4Gi",
  "1.5Gi",
  "1.1Gi",
  "0.5Mi",
  "1.0000001Gi",
  "512m",
  "1000m",
  "1500m",
  "100u",
  "1n",
  "0.5",
  "1.0",
  "1e3",
  "1e-3",
  "1e15",
  "32Ti",
  "33Ti",
  "1Pi",
  "12345678901234567890.5",
  "-1",
  "m",
  2 ** 45,
  2 ** 45 + 1,
];

// ---------------------------------------------------------------------------------------------
// Labels, tolerations, scheduling
// ---------------------------------------------------------------------------------------------

/** Label keys at every boundary of IsQualifiedName: prefix 253/254, name 63/64, and each character position. */
export const LABEL_KEYS = [
  "disktype",
  "a",
  "A",
  "a".repeat(63),
  "a".repeat(64),
  prefixedKey(253),
  prefixedKey(254),
  `example.com/${"n".repeat(63)}`,
  `example.com/${"n".repeat(64)}`,
  prefixedKey(253, "n".repeat(63)),
  "nvidia.com/gpu.product",
  "kubernetes.io/hostname",
  "topology.kubernetes.io/zone",
  "example.com/a_b.c-d",
  "a_b",
  "a.b",
  "_a",
  "a_",
  "-a",
  "a-",
  ".a",
  "a.",
  "/a",
  "a/",
  "a/b/c",
  "Example.com/a",
  "ex_ample.com/a",
  "-example.com/a",
  "example-.com/a",
  "example..com/a",
  "example.com./a",
  "example.com/-a",
  "example.com/a-",
  "a b",
  "é",
  ...SPACES.slice(0, 3).map((s) => `a${s}b`),
];
export const LABEL_VALUES = [
  "",
  "a",
  "a".repeat(63),
  "a".repeat(64),
  "A.b_c-D",
  "-a",
  "a-",
  "_a",
  ".a",
  "a b",
  "a/b",
  "a:b",
  "é",
  ...SPACES.slice(0, 3).map((s) => `a${s}`),
];

/** The label keys and values that decide a key's or value's fate, for the many positions in an affinity. */
const AFFINITY_LABEL_KEYS = [
  "disktype",
  prefixedKey(253),
  prefixedKey(254),
  `example.com/${"n".repeat(63)}`,
  `example.com/${"n".repeat(64)}`,
  "/a",
  "a/b/c",
  "-a",
  "a_",
  "Example.com/a",
  "a b",
  "a\u00a0b",
];
const AFFINITY_LABEL_VALUES = ["", "a".repeat(63), "a".repeat(64), "-a", "a b", "a/b", "a\u00a0"];

const withScheduling = (scheduling: Json, spec: Json = {}): Json => manifest({ model: model(), ...spec, scheduling });

function schedulingCases(): AdmissionCase[] {
  const out: AdmissionCase[] = [];
  const add = (what: string, field: string, m: Json): void => {
    out.push({ what, field, manifest: m });
  };
  for (const k of LABEL_KEYS) {
    add(
      `nodeSelector key ${JSON.stringify(k)}`,
      "spec.scheduling.nodeSelector",
      withScheduling({ nodeSelector: { [k]: "x" } }),
    );
    add(
      `toleration key ${JSON.stringify(k)}`,
      "spec.scheduling.tolerations[0].key",
      withScheduling({ tolerations: [{ key: k, operator: "Exists" }] }),
    );
  }
  for (const v of LABEL_VALUES) {
    add(
      `nodeSelector value ${JSON.stringify(v)}`,
      "spec.scheduling.nodeSelector.disktype",
      withScheduling({ nodeSelector: { disktype: v } }),
    );
    add(
      `toleration value ${JSON.stringify(v)}`,
      "spec.scheduling.tolerations[0].value",
      withScheduling({ tolerations: [{ key: "gpu", operator: "Equal", value: v }] }),
    );
  }
  const tolerations: [string, string, Json][] = [
    ["tolerate every taint", "operator", { operator: "Exists" }],
    ["a value without an operator (Equal)", "value", { key: "gpu", value: "present" }],
    ["a bad value without an operator (Equal)", "value", { key: "gpu", value: "a b" }],
    ["an empty key with Equal", "operator", { key: "", operator: "Equal" }],
    ["an empty key without an operator", "operator", { key: "" }],
    ["Exists with an empty value", "value", { key: "gpu", operator: "Exists", value: "" }],
    ["Exists with a value", "value", { key: "gpu", operator: "Exists", value: "x" }],
    [
      "tolerationSeconds with NoExecute",
      "tolerationSeconds",
      { key: "gpu", effect: "NoExecute", tolerationSeconds: 30 },
    ],
    ["negative tolerationSeconds", "tolerationSeconds", { key: "gpu", effect: "NoExecute", tolerationSeconds: -1 }],
    ["tolerationSeconds without an effect", "tolerationSeconds", { key: "gpu", tolerationSeconds: 30 }],
    ["an unknown effect", "effect", { key: "gpu", effect: "NoRun" }],
    ["an unknown operator", "operator", { key: "gpu", operator: "In" }],
  ];
  for (const [what, field, t] of tolerations) {
    add(`toleration: ${what}`, `spec.scheduling.tolerations[0].${field}`, withScheduling({ tolerations: [t] }));
  }
  const gpu = (product: string | undefined, selected: string | undefined): Json =>
    withScheduling(selected === undefined ? {} : { nodeSelector: { "nvidia.com/gpu.product": selected } }, {
      resources: { gpu: { count: 1, ...(product === undefined ? {} : { product }) } },
    });
  add("gpu product and the same nodeSelector", "spec.scheduling.nodeSelector", gpu("NVIDIA-A10G", "NVIDIA-A10G"));
  add("gpu product and another nodeSelector", "spec.scheduling.nodeSelector", gpu("NVIDIA-A10G", "NVIDIA-L4"));
  add("gpu product and an empty nodeSelector", "spec.scheduling.nodeSelector", gpu("NVIDIA-A10G", ""));
  add("a product nodeSelector without gpu product", "spec.scheduling.nodeSelector", gpu(undefined, "NVIDIA-L4"));
  for (const p of ["NVIDIA-H100-80GB-HBM3", "a".repeat(63), "a".repeat(64), "NVIDIA A100", "", "-a"]) {
    add(`gpu product ${JSON.stringify(p)}`, "spec.resources.gpu.product", gpu(p, undefined));
  }
  for (const p of ["a".repeat(253), "a".repeat(254), "high.priority", "High", "a_b", "-a"]) {
    add(
      `priorityClassName ${JSON.stringify(p)}`,
      "spec.scheduling.priorityClassName",
      withScheduling({ priorityClassName: p }),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Affinity
// ---------------------------------------------------------------------------------------------

const NODE_REQUIRED = "spec.scheduling.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const NODE_PREFERRED = "spec.scheduling.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution";
const POD_REQUIRED = "spec.scheduling.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const ANTI_PREFERRED = "spec.scheduling.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution";

const withAffinity = (affinity: Json): Json => withScheduling({ affinity });
const nodeTerm = (term: Json): Json =>
  withAffinity({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [term] } } });
const nodeExpr = (e: Json): Json => nodeTerm({ matchExpressions: [e] });
const preferredNode = (p: Json): Json =>
  withAffinity({ nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [p] } });
const podTerm = (t: Json): Json =>
  withAffinity({
    podAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { topologyKey: "kubernetes.io/hostname", labelSelector: {}, ...t },
      ],
    },
  });
const antiPreferred = (p: Json): Json =>
  withAffinity({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [p] } });

function affinityCases(): AdmissionCase[] {
  const out: AdmissionCase[] = [];
  const add = (what: string, field: string, m: Json): void => {
    out.push({ what, field, manifest: m });
  };
  const expr = `${NODE_REQUIRED}.nodeSelectorTerms[0].matchExpressions[0]`;
  const podExpr = `${POD_REQUIRED}[0].labelSelector.matchExpressions[0]`;
  // Every position a label key takes in an affinity.
  for (const k of AFFINITY_LABEL_KEYS) {
    const shown = JSON.stringify(k);
    add(`node affinity key ${shown}`, `${expr}.key`, nodeExpr({ key: k, operator: "Exists" }));
    add(`topologyKey ${shown}`, `${POD_REQUIRED}[0].topologyKey`, podTerm({ topologyKey: k }));
    add(
      `pod label selector key ${shown}`,
      `${podExpr}.key`,
      podTerm({ labelSelector: { matchExpressions: [{ key: k, operator: "Exists" }] } }),
    );
    add(
      `matchLabels key ${shown}`,
      `${POD_REQUIRED}[0].labelSelector.matchLabels`,
      podTerm({ labelSelector: { matchLabels: { [k]: "x" } } }),
    );
    add(
      `namespaceSelector key ${shown}`,
      `${POD_REQUIRED}[0].namespaceSelector.matchLabels`,
      podTerm({ namespaceSelector: { matchLabels: { [k]: "x" } } }),
    );
    add(
      `matchLabelKeys entry ${shown}`,
      `${POD_REQUIRED}[0].matchLabelKeys[0]`,
      podTerm({ labelSelector: {}, matchLabelKeys: [k] }),
    );
  }
  for (const v of AFFINITY_LABEL_VALUES) {
    const shown = JSON.stringify(v);
    add(
      `node affinity value ${shown}`,
      `${expr}.values[0]`,
      nodeExpr({ key: "disktype", operator: "In", values: [v] }),
    );
    add(
      `preferred node affinity value ${shown}`,
      `${NODE_PREFERRED}[0].preference.matchExpressions[0].values[0]`,
      preferredNode({
        weight: 1,
        preference: { matchExpressions: [{ key: "disktype", operator: "NotIn", values: [v] }] },
      }),
    );
    add(
      `pod label selector value ${shown}`,
      `${podExpr}.values[0]`,
      podTerm({ labelSelector: { matchExpressions: [{ key: "app", operator: "In", values: [v] }] } }),
    );
    add(
      `matchLabels value ${shown}`,
      `${POD_REQUIRED}[0].labelSelector.matchLabels.app`,
      podTerm({ labelSelector: { matchLabels: { app: v } } }),
    );
  }
  const operators: [string, Json, string][] = [
    ["In with two values", { key: "disktype", operator: "In", values: ["ssd", "nvme"] }, "values"],
    ["In without values", { key: "disktype", operator: "In" }, "values"],
    ["In with an empty list", { key: "disktype", operator: "In", values: [] }, "values"],
    ["NotIn with a value", { key: "disktype", operator: "NotIn", values: ["hdd"] }, "values"],
    ["Exists", { key: "disktype", operator: "Exists" }, "values"],
    ["Exists with an empty list", { key: "disktype", operator: "Exists", values: [] }, "values"],
    ["Exists with a value", { key: "disktype", operator: "Exists", values: ["x"] }, "values"],
    ["DoesNotExist with a value", { key: "disktype", operator: "DoesNotExist", values: ["x"] }, "values"],
    ["Gt 4", { key: "gpu-count", operator: "Gt", values: ["4"] }, "values"],
    ["Lt 3", { key: "gpu-count", operator: "Lt", values: ["3"] }, "values"],
    // A negative number is no label value, and required node affinity takes label values only.
    ["Lt -3", { key: "gpu-count", operator: "Lt", values: ["-3"] }, "values[0]"],
    ["Gt with 18 digits", { key: "gpu-count", operator: "Gt", values: ["9".repeat(18)] }, "values"],
    ["Gt four", { key: "gpu-count", operator: "Gt", values: ["four"] }, "values"],
    ["Gt 4.5", { key: "gpu-count", operator: "Gt", values: ["4.5"] }, "values"],
    ["Gt with two values", { key: "gpu-count", operator: "Gt", values: ["1", "2"] }, "values"],
    ["Lt without values", { key: "gpu-count", operator: "Lt" }, "values"],
    ["an unknown operator", { key: "disktype", operator: "Equals", values: ["ssd"] }, "operator"],
    ["no operator", { key: "disktype", values: ["ssd"] }, "operator"],
    ["no key", { operator: "Exists" }, "key"],
  ];
  for (const [what, e, field] of operators) add(`node affinity: ${what}`, `${expr}.${field}`, nodeExpr(e));
  const fields = `${NODE_REQUIRED}.nodeSelectorTerms[0].matchFields[0]`;
  const matchFields: [string, Json, string][] = [
    ["metadata.name In a node", { key: "metadata.name", operator: "In", values: ["node-1"] }, "values"],
    ["metadata.name NotIn a node", { key: "metadata.name", operator: "NotIn", values: ["node.example.com"] }, "values"],
    ["metadata.name In two nodes", { key: "metadata.name", operator: "In", values: ["a", "b"] }, "values"],
    ["metadata.name In no node", { key: "metadata.name", operator: "In", values: [] }, "values"],
    [
      "metadata.name In an invalid node name",
      { key: "metadata.name", operator: "In", values: ["Node_1"] },
      "values[0]",
    ],
    ["metadata.name Exists", { key: "metadata.name", operator: "Exists" }, "operator"],
    ["metadata.namespace In", { key: "metadata.namespace", operator: "In", values: ["x"] }, "key"],
  ];
  for (const [what, f, field] of matchFields)
    add(`matchFields: ${what}`, `${fields}.${field}`, nodeTerm({ matchFields: [f] }));
  add("an empty node selector term", `${NODE_REQUIRED}.nodeSelectorTerms[0]`, nodeTerm({}));
  add(
    "no node selector terms",
    `${NODE_REQUIRED}.nodeSelectorTerms`,
    withAffinity({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } } }),
  );
  add(
    "required node affinity without terms",
    `${NODE_REQUIRED}.nodeSelectorTerms`,
    withAffinity({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } }),
  );
  for (const w of [1, 100, 0, 101, -1]) {
    add(`preferred node weight ${w}`, `${NODE_PREFERRED}[0].weight`, preferredNode({ weight: w, preference: {} }));
    add(
      `preferred pod anti-affinity weight ${w}`,
      `${ANTI_PREFERRED}[0].weight`,
      antiPreferred({ weight: w, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: {} } }),
    );
  }
  add("preferred node term without preference", `${NODE_PREFERRED}[0].preference`, preferredNode({ weight: 1 }));
  add("preferred node term without weight", `${NODE_PREFERRED}[0].weight`, preferredNode({ preference: {} }));
  add(
    "weighted pod term without podAffinityTerm",
    `${ANTI_PREFERRED}[0].podAffinityTerm`,
    antiPreferred({ weight: 1 }),
  );
  add("pod term without topologyKey", `${POD_REQUIRED}[0].topologyKey`, podTerm({ topologyKey: undefined }));
  add("pod term with an empty topologyKey", `${POD_REQUIRED}[0].topologyKey`, podTerm({ topologyKey: "" }));
  for (const ns of ["ml", "a".repeat(63), "a".repeat(64), "Ml", "m.l", "-ml", "m_l"]) {
    add(`pod term namespace ${JSON.stringify(ns)}`, `${POD_REQUIRED}[0].namespaces[0]`, podTerm({ namespaces: [ns] }));
  }
  const keysCases: [string, Json, string][] = [
    [
      "matchLabelKeys with a selector",
      { labelSelector: { matchLabels: { team: "a" } }, matchLabelKeys: ["app.kubernetes.io/instance"] },
      "matchLabelKeys",
    ],
    [
      "mismatchLabelKeys with a selector",
      { labelSelector: {}, mismatchLabelKeys: ["app.kubernetes.io/instance"] },
      "mismatchLabelKeys",
    ],
    ["no labelSelector (matches no pod)", { labelSelector: undefined }, "labelSelector"],
    [
      "matchLabelKeys without a selector",
      { matchLabelKeys: ["app.kubernetes.io/instance"], labelSelector: undefined },
      "labelSelector",
    ],
    [
      "a key in matchLabelKeys and mismatchLabelKeys",
      { labelSelector: {}, matchLabelKeys: ["app"], mismatchLabelKeys: ["app"] },
      "matchLabelKeys",
    ],
    [
      "a matchLabelKeys key the selector's matchLabels has",
      {
        labelSelector: { matchLabels: { "app.kubernetes.io/instance": "x" } },
        matchLabelKeys: ["app.kubernetes.io/instance"],
      },
      "labelSelector",
    ],
    [
      "a matchLabelKeys key the selector's expressions have",
      {
        labelSelector: { matchExpressions: [{ key: "app.kubernetes.io/instance", operator: "Exists" }] },
        matchLabelKeys: ["app.kubernetes.io/instance"],
      },
      "labelSelector",
    ],
    [
      "a mismatchLabelKeys key the selector has",
      {
        labelSelector: { matchLabels: { "app.kubernetes.io/instance": "x" } },
        mismatchLabelKeys: ["app.kubernetes.io/instance"],
      },
      "labelSelector",
    ],
    ["an empty namespaceSelector (all namespaces)", { namespaceSelector: {} }, "namespaceSelector"],
    ["a typo (labelSelecter)", { labelSelecter: {} }, "labelSelecter"],
  ];
  for (const [what, t, field] of keysCases) add(`pod term: ${what}`, `${POD_REQUIRED}[0].${field}`, podTerm(t));
  for (const [what, field, a] of [
    ["nodeAfinity", "nodeAfinity", { nodeAfinity: {} }],
    ["podAntiAfinity", "podAntiAfinity".replace("Affinity", "Afinity"), { podAntiAfinity: {} }],
    [
      "requiredDuringScheduling",
      "nodeAffinity.requiredDuringScheduling",
      { nodeAffinity: { requiredDuringScheduling: {} } },
    ],
    ["an empty affinity", "", {}],
    ["empty node, pod and anti-affinity", "", { nodeAffinity: {}, podAffinity: {}, podAntiAffinity: {} }],
  ] as [string, string, Json][]) {
    add(
      `affinity: ${what}`,
      field === "" ? "spec.scheduling.affinity" : `spec.scheduling.affinity.${field}`,
      withAffinity(a),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Autoscaling and image
// ---------------------------------------------------------------------------------------------

const withMetric = (metric: Json): Json =>
  manifest({ model: model(), autoscaling: { maxReplicas: 4, metric: { target: 10, ...metric } } });

const QUERIES_PROMQL = ["up", " up ", "sum(rate(x[1m]))", " ", "\t\n\r", "\u00a0", " \u3000 ", "\f", "\v"];
const IMAGES = [
  "registry.example.com/maas-serving:0.1.0",
  "maas-serving",
  "localhost:5000/maas/serving:latest",
  "registry.example.com:443/a/b/c",
  "ghcr.io/maas-dev/maas-serving@sha256:" + "a".repeat(64),
  "ghcr.io/maas-dev/maas-serving:0.1.0@sha256:" + "a".repeat(64),
  "a__b/c.d-e:t_1.2-3",
  `r.io/${"a".repeat(240)}`,
  `r.io/${"a".repeat(251)}:${"t".repeat(128)}`,
  `r.io/${"a".repeat(251)}:${"t".repeat(129)}`,
  "Registry.Example.com/maas",
  "registry.example.com/MaaS:1",
  "maas:",
  "maas@sha256:abc",
  "maas serving",
  "maas:-1",
  "-maas",
  "maas_",
  "maas\u00a0",
  " maas",
  "maas:tag\n",
];

function otherCases(): AdmissionCase[] {
  const out: AdmissionCase[] = [];
  for (const q of QUERIES_PROMQL) {
    out.push({
      what: `PromQL query ${JSON.stringify(q)}`,
      field: "spec.autoscaling.metric.query",
      manifest: withMetric({ type: "PromQL", query: q }),
    });
  }
  for (const image of IMAGES) {
    out.push({
      what: `image ${JSON.stringify(image)}`,
      field: "spec.image",
      manifest: manifest({ model: model(), image }),
    });
  }
  return out;
}

/** Every case: boundaries first, then `randomUris` seeded random URIs. */
export function admissionCases(seed = 9, randomUriCount = 40): AdmissionCase[] {
  const random = prng(seed);
  const uris = [...uriBoundaries(), ...randomUris(random, randomUriCount)].map((u): AdmissionCase => ({
    what: `uri: ${u.what}: ${JSON.stringify(u.uri)}${u.format === undefined ? "" : ` (${u.format})`}`,
    field: "spec.model.uri",
    owned: "fetch",
    manifest: manifest({ model: { uri: u.uri, ...(u.format === undefined ? {} : { format: u.format }) } }),
  }));
  const served = SERVED_NAMES.map((n): AdmissionCase => ({
    what: `servedName ${JSON.stringify(n)}`,
    field: "spec.model.servedName",
    owned: "serve",
    manifest: manifest({ model: model({ servedName: n }) }),
  }));
  const versions = VERSIONS.map((v): AdmissionCase => ({
    what: `version ${JSON.stringify(v)}`,
    field: "spec.model.version",
    owned: "serve",
    manifest: manifest({ model: model({ version: v }) }),
  }));
  const names = NAMES.map((n): AdmissionCase => ({
    what: `name ${JSON.stringify(n)}`,
    field: "metadata.name",
    manifest: manifest({ model: model() }, n),
  }));
  const quantity =
    (r: "cpu" | "memory") =>
    (q: string | number): AdmissionCase => ({
      what: `${r} ${JSON.stringify(q)}`,
      field: `spec.resources.${r}`,
      manifest: manifest({ model: model(), resources: { [r]: q } }),
    });
  const quantities = [
    ...[...QUANTITIES, ...INT_QUANTITIES].map(quantity("cpu")),
    ...MEMORY_QUANTITIES.map(quantity("memory")),
  ];
  return [
    ...uris,
    ...served,
    ...versions,
    ...names,
    ...quantities,
    ...schedulingCases(),
    ...affinityCases(),
    ...otherCases(),
  ];
}

// ---------------------------------------------------------------------------------------------
// What the pod makes of a ModelDeployment
// ---------------------------------------------------------------------------------------------

/** The generated manifest in `namespace`, with a uid (the Deployment's owner reference needs one). */
export function inNamespace(c: AdmissionCase, namespace: string): ModelDeployment {
  const m = structuredClone(c.manifest) as unknown as ModelDeployment;
  return { ...m, metadata: { ...m.metadata, namespace, uid: "00000000-0000-4000-8000-000000000009" } };
}

/** What the pod's two steps say about the configuration the operator renders for them. */
export interface RuntimeVerdict {
  readonly deployment: Desired<V1Deployment>;
  /** Why `maas-serving fetch` would refuse its configuration (the model URI above all), if it would. */
  readonly fetch: string | undefined;
  /** Why `maas-serving serve` would refuse its configuration (served name, version, ...). */
  readonly serve: readonly string[];
}

const envOf = (c: V1Container | undefined): NodeJS.ProcessEnv =>
  Object.fromEntries((c?.env ?? []).filter((e: V1EnvVar) => e.value !== undefined).map((e) => [e.name, e.value]));

/**
 * Builds the Deployment the operator would apply for `md` (desiredDeployment) and feeds the
 * environment it gives each container to that step's own configuration parser.
 */
export function runtimeVerdict(md: ModelDeployment): RuntimeVerdict {
  const deployment = desiredDeployment(md, { servingImage: "registry.example.com/maas-serving:0.1.0" });
  const pod = deployment.spec?.template.spec;
  let fetch: string | undefined;
  try {
    parseFetchConfig(envOf(pod?.initContainers?.[0]));
  } catch (err) {
    fetch = err instanceof Error ? err.message : String(err);
  }
  // The body budget does not depend on the spec's grammar: any memory limits do.
  const serve = readServeConfig(envOf(pod?.containers[0]), { containerBytes: undefined, heapBytes: 2 ** 30 }).problems;
  return { deployment, fetch, serve };
}
