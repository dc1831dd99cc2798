import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import {
  Backends,
  ModelFormats,
  Reasons,
  modelDeploymentSchema,
  validateModelDeployment,
  withDefaults,
  type ModelDeploymentSpec,
} from "../../../operator/src/api/index.ts";
import type { Rule, Schema } from "../../../operator/src/api/schema.ts";
import { invalidCases, manifest, minimalSpec, minimalSpecDefaulted } from "./corpus.ts";

const examplesDir = join(import.meta.dirname, "../../../crds/examples");
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => ({ file: f, doc: parse(readFileSync(join(examplesDir, f), "utf8")) as unknown }));

function allRules(s: Schema<unknown>): Rule[] {
  return [
    ...s.rules,
    ...Object.values(s.properties ?? {}).flatMap(allRules),
    ...(s.items ? allRules(s.items) : []),
    ...(s.additionalProperties ? allRules(s.additionalProperties) : []),
  ];
}

describe("validateModelDeployment", () => {
  it("finds the six documented examples", () => {
    assert.deepEqual(examples.map((e) => e.file).sort(), [
      "autoscaled-promql.yaml",
      "autoscaled-rps.yaml",
      "cpu-minimal.yaml",
      "gpu-product.yaml",
      "pvc-model.yaml",
      "s3-credentials.yaml",
    ]);
  });

  for (const { file, doc } of examples) {
    it(`accepts the example ${file}`, () => {
      const r = validateModelDeployment(doc);
      assert.deepEqual(r.errors, []);
    });
  }

  describe("rejects each invalid manifest of the corpus on the field it is about", () => {
    for (const c of invalidCases) {
      it(`${c.what} → ${c.field}`, () => {
        const r = validateModelDeployment(c.manifest);
        assert.equal(r.ok, false);
        assert.ok(
          r.errors.some((e) => e.field === c.field),
          `no error on ${c.field}: ${JSON.stringify(r.errors)}`,
        );
      });
    }
  });

  it("has a corpus of at least 30 invalid manifests", () => {
    assert.ok(invalidCases.length >= 30, `${invalidCases.length} cases`);
  });

  it("exercises every CEL rule of the schema with at least one corpus case", () => {
    const fired = new Set(
      invalidCases.flatMap((c) => {
        const r = validateModelDeployment(c.manifest);
        return r.ok ? [] : r.errors.map((e) => e.message);
      }),
    );
    const missed = allRules(modelDeploymentSchema)
      .map((r) => r.message)
      .filter((m) => !fired.has(m));
    assert.deepEqual(missed, []);
  });

  it("accepts each corpus manifest once its problem is gone (the corpus tests one thing at a time)", () => {
    // The base manifest the corpus mutates is itself valid, with and without autoscaling.
    const base = manifest({ model: { uri: "https://models.example.com/m/model.json" } });
    assert.deepEqual(validateModelDeployment(base).errors, []);
    const scaled = manifest({
      model: { uri: "https://models.example.com/m/model.json" },
      autoscaling: { maxReplicas: 4, metric: { target: 10 } },
    });
    assert.deepEqual(validateModelDeployment(scaled).errors, []);
  });

  it("fills in the API server's defaults on a copy and leaves the input alone", () => {
    const input = manifest(minimalSpec);
    const before = structuredClone(input);
    const r = validateModelDeployment(input);
    assert.ok(r.ok);
    assert.deepEqual(input, before);
    assert.deepEqual(r.value.spec, minimalSpecDefaulted);
  });

  it("defaults the autoscaler's windows only when autoscaling is set", () => {
    const spec = withDefaults(
      manifest({ model: { uri: "s3://bucket/m/model.json" }, autoscaling: { maxReplicas: 3, metric: { target: 2 } } }),
    ).spec as ModelDeploymentSpec;
    assert.deepEqual(spec.autoscaling, {
      maxReplicas: 3,
      metric: { target: 2, type: "RequestsPerSecond" },
      minReplicas: 1,
      stableWindowSeconds: 60,
      panicWindowSeconds: 6,
      panicThreshold: 2,
      scaleDownDelaySeconds: 300,
      tolerance: 0.1,
      maxScaleUpRate: 1000,
      maxScaleDownRate: 2,
    });
    assert.equal(spec.replicas, undefined);
  });

  it("keeps what the user wrote instead of a default", () => {
    const spec = withDefaults(
      manifest({
        model: { uri: "s3://bucket/m/model.json", format: "tfjs-layers" },
        serving: { backend: "wasm", maxQueue: 9 },
      }),
    ).spec as ModelDeploymentSpec;
    assert.equal(spec.model.format, "tfjs-layers");
    assert.equal(spec.serving?.backend, "wasm");
    assert.equal(spec.serving?.maxQueue, 9);
    assert.equal(spec.serving?.batching?.maxBatchSize, 32);
  });

  const badShapes: { what: string; input: unknown; field: string }[] = [
    { what: "a string", input: "ModelDeployment", field: "" },
    { what: "null", input: null, field: "" },
    {
      what: "another kind",
      input: { ...manifest({ model: { uri: "s3://bucket/m/model.json" } }), kind: "Deployment" },
      field: "kind",
    },
    {
      what: "another apiVersion",
      input: { ...manifest({ model: { uri: "s3://bucket/m/model.json" } }), apiVersion: "maas.dev/v1" },
      field: "apiVersion",
    },
    {
      what: "no metadata.name",
      input: { ...manifest({ model: { uri: "s3://bucket/m/model.json" } }), metadata: {} },
      field: "metadata.name",
    },
    {
      what: "no spec",
      input: { apiVersion: "maas.dev/v1alpha1", kind: "ModelDeployment", metadata: { name: "x" } },
      field: "spec",
    },
  ];
  for (const b of badShapes) {
    it(`names the problem for ${b.what}`, () => {
      const r = validateModelDeployment(b.input);
      assert.equal(r.ok, false);
      assert.ok(
        r.errors.some((e) => e.field === b.field),
        JSON.stringify(r.errors),
      );
    });
  }

  it("skips cross-field rules when a value has the wrong type, and says so", () => {
    const r = validateModelDeployment(
      manifest({
        model: { uri: "https://m.example.com/model.json" },
        replicas: "two",
        autoscaling: { maxReplicas: 2, metric: { target: 1 } },
      }),
    );
    assert.deepEqual(
      r.errors.map((e) => e.field),
      ["spec.replicas", ""],
    );
    assert.match(r.errors[1]!.message, /not checked/);
  });

  it("checks status as the status subresource would (conditions keyed by type)", () => {
    const ok = {
      ...manifest({ model: { uri: "s3://bucket/m/model.json" } }, "x"),
      status: {
        observedGeneration: 2,
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "AllReplicasReady",
            message: "2/2 ready",
            lastTransitionTime: "2026-01-02T03:04:05Z",
          },
        ],
        replicas: 2,
        readyReplicas: 2,
        replicasSummary: "2/2",
        selector: "maas.dev/deployment=x",
      },
    };
    assert.deepEqual(validateModelDeployment(ok).errors, []);
    const dup = structuredClone(ok);
    dup.status.conditions.push({ ...dup.status.conditions[0]!, status: "False" });
    assert.deepEqual(
      validateModelDeployment(dup).errors.map((e) => e.field),
      ["status.conditions[1]"],
    );
    const badReason = structuredClone(ok);
    badReason.status.conditions[0]!.reason = "all replicas ready";
    assert.deepEqual(
      validateModelDeployment(badReason).errors.map((e) => e.field),
      ["status.conditions[0].reason"],
    );
  });
});

describe("the API's constants", () => {
  it("uses the serving image's backends and model formats as enums", () => {
    const spec = modelDeploymentSchema.properties?.spec;
    const serving = spec?.properties?.serving?.properties?.backend?.props.enum;
    const format = spec?.properties?.model?.properties?.format?.props.enum;
    assert.deepEqual(serving, [...Backends]);
    assert.deepEqual(format, [...ModelFormats]);
  });

  it("has condition reasons that are their own names and valid metav1.Condition reasons", () => {
    for (const [type, reasons] of Object.entries(Reasons)) {
      for (const [key, value] of Object.entries(reasons)) {
        assert.equal(key, value, `${type}.${key}`);
        assert.match(value, /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/);
      }
    }
  });

  it("types a full spec, and refuses values outside the enums at compile time", () => {
    const spec: ModelDeploymentSpec = {
      model: { uri: "s3://bucket/m/model.json", format: "tfjs-graph", credentialsSecretRef: { name: "s" } },
      resources: { cpu: 2, memory: "4Gi", gpu: { count: 1, product: "NVIDIA-L4" } },
      serving: { backend: "tensorflow-gpu" },
      autoscaling: { maxReplicas: 3, metric: { type: "PromQL", target: 1, query: "up" } },
    };
    // @ts-expect-error: "onnx" is not a backend
    const wrong: ModelDeploymentSpec = { model: { uri: "s3://bucket/m/model.json" }, serving: { backend: "onnx" } };
    assert.ok(spec && wrong);
  });
});
