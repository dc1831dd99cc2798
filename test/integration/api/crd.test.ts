import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import {
  CRD_NAME,
  GROUP,
  PLURAL,
  VERSION,
  specSchema,
  withDefaults,
  type ModelDeployment,
} from "../../../operator/src/api/index.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { installCrd } from "../../testbed/operator.ts";
import {
  CRD_ANNOTATION_BUDGET_BYTES,
  invalidCases,
  manifest,
  minimalSpec,
  minimalSpecDefaulted,
} from "../../unit/api/corpus.ts";

const root = join(import.meta.dirname, "../../..");
const crdFile = join(root, "crds/maas.dev_modeldeployments.yaml");
const examplesDir = join(root, "crds/examples");
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith(".yaml"))
  .map((file) => ({ file, doc: parse(readFileSync(join(examplesDir, file), "utf8")) as ModelDeployment }));

/** Collapses whitespace, so text wrapped by kubectl explain compares with the schema's description. */
const flat = (s: string): string => s.replace(/\s+/g, " ").trim();

describe("the ModelDeployment CRD on a real API server", function () {
  let tb: Testbed;
  let ns: string;
  let applied: { stdout: string };

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    applied = await installCrd(tb);
    ns = await tb.createNamespace("api-crd");
  });

  async function kubectlApply(doc: unknown, ...flags: string[]) {
    return tb.kubectl(["apply", "-n", ns, ...flags, "-f", "-"], { input: JSON.stringify(doc) });
  }

  async function read(name: string): Promise<ModelDeployment> {
    return (await tb.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name,
    })) as ModelDeployment;
  }

  it("installs with plain client-side kubectl apply, far below the 256 KiB annotation limit", async () => {
    assert.match(
      applied.stdout,
      /customresourcedefinition.apiextensions.k8s.io\/modeldeployments.maas.dev (created|configured|unchanged)/,
    );
    const get = await tb.kubectl(["get", "crd", CRD_NAME, "-o", "json"]);
    const crd = JSON.parse(get.stdout) as {
      metadata: { annotations?: Record<string, string> };
      status: { conditions: { type: string; status: string }[] };
    };
    const annotation = crd.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"] ?? "";
    const file = Buffer.byteLength(readFileSync(crdFile));
    console.log(
      `      CRD file ${file} bytes; last-applied annotation ${Buffer.byteLength(annotation)} bytes (limit 262144)`,
    );
    assert.ok(annotation.length > 0, "client-side apply leaves the last-applied annotation");
    assert.ok(Buffer.byteLength(annotation) < CRD_ANNOTATION_BUDGET_BYTES);
    const conditions = Object.fromEntries(crd.status.conditions.map((c) => [c.type, c.status]));
    assert.equal(conditions.Established, "True");
    assert.equal(conditions.NamesAccepted, "True");
    assert.equal(conditions.NonStructuralSchema, undefined);
  });

  it("installs idempotently: applying it again changes nothing", async () => {
    const again = await installCrd(tb);
    assert.match(again.stdout, /unchanged/);
  });

  describe("examples", () => {
    for (const { file, doc } of examples) {
      it(`${file} passes a server-side dry-run apply with strict field validation`, async () => {
        const r = await tb.kubectl([
          "apply",
          "-n",
          ns,
          "--dry-run=server",
          "--validate=strict",
          "-f",
          join(examplesDir, file),
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /\(server dry run\)/);
        assert.equal(r.stderr, "", "no warnings either");
      });

      it(`${file} is stored with exactly the defaults the runtime validator predicts`, async () => {
        const name = `ex-${doc.metadata.name ?? "x"}`.slice(0, 46);
        const r = await kubectlApply({ ...doc, metadata: { name } });
        assert.equal(r.code, 0, r.stderr);
        const stored = await read(name);
        assert.deepEqual(stored.spec, withDefaults(doc).spec);
      });
    }
  });

  describe(`rejects each of the ${invalidCases.length} invalid manifests with an error naming its field`, () => {
    for (const c of invalidCases) {
      it(`${c.what} → ${c.field}`, async () => {
        const r = await kubectlApply(c.manifest, "--dry-run=server", "--validate=strict");
        assert.notEqual(r.code, 0, `accepted: ${r.stdout}`);
        assert.ok(r.stderr.includes(c.field), `error does not name ${c.field}:\n${r.stderr}`);
      });
    }
  });

  it("explains spec.autoscaling with the schema's descriptions", async () => {
    // The API server publishes a new CRD's OpenAPI a few seconds after it is Established.
    const r = await tb.waitFor(
      "kubectl explain to know ModelDeployment",
      async () => {
        const out = await tb.kubectl(["explain", "modeldeployment.spec.autoscaling"]);
        return out.code === 0 ? out : undefined;
      },
      60_000,
    );
    const text = flat(r.stdout);
    const autoscaling = specSchema.properties?.autoscaling;
    assert.ok(autoscaling);
    assert.ok(text.includes(flat(autoscaling.props.description ?? "?")), text);
    for (const [field, child] of Object.entries(autoscaling.properties ?? {})) {
      assert.ok(text.includes(field), `${field} missing`);
      assert.ok(text.includes(flat(child.props.description ?? "?")), `description of ${field} missing`);
    }
  });

  it("explains nested fields too", async () => {
    const r = await tb.kubectl(["explain", "md.spec.model.credentialsSecretRef.name"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(flat(r.stdout), /Name of the Secret\./);
  });

  it("explains scheduling.affinity field by field, with Kubernetes' required fields", async () => {
    const r = await tb.kubectl([
      "explain",
      "md.spec.scheduling.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = flat(r.stdout);
    for (const field of [
      "labelSelector <Object> -required-",
      "topologyKey <string> -required-",
      "namespaces <[]string>",
    ]) {
      assert.ok(text.includes(field), `${field} missing:\n${r.stdout}`);
    }
  });

  it("applies defaults on the server: a minimal object reads back with format, resources and serving filled in", async () => {
    const r = await kubectlApply(manifest(minimalSpec, "defaults"));
    assert.equal(r.code, 0, r.stderr);
    const stored = await read("defaults");
    assert.deepEqual(stored.spec, minimalSpecDefaulted);
    assert.equal(stored.spec.replicas, undefined, "replicas is never defaulted: it would conflict with autoscaling");
  });

  it("changes spec.replicas through the scale subresource with kubectl scale", async () => {
    const created = await kubectlApply(manifest({ model: { uri: "s3://bucket/m/model.json" }, replicas: 1 }, "scaled"));
    assert.equal(created.code, 0, created.stderr);
    const r = await tb.kubectl(["scale", "-n", ns, "md/scaled", "--replicas=3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await read("scaled")).spec.replicas, 3);
    // The scale subresource reads status.replicas and status.selector, which the operator writes.
    const current = await read("scaled");
    await tb.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name: "scaled",
      body: { ...current, status: { replicas: 3, selector: "maas.dev/deployment=scaled" } },
    });
    const scale = await tb.kubectl([
      "get",
      "--raw",
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}/scaled/scale`,
    ]);
    assert.equal(scale.code, 0, scale.stderr);
    const body = JSON.parse(scale.stdout) as { spec: unknown; status: unknown };
    assert.deepEqual(body.spec, { replicas: 3 });
    assert.deepEqual(body.status, { replicas: 3, selector: "maas.dev/deployment=scaled" });
  });

  it("refuses kubectl scale on an autoscaled ModelDeployment, naming spec.replicas", async () => {
    const created = await kubectlApply(
      manifest(
        { model: { uri: "s3://bucket/m/model.json" }, autoscaling: { maxReplicas: 4, metric: { target: 5 } } },
        "autoscaled",
      ),
    );
    assert.equal(created.code, 0, created.stderr);
    const r = await tb.kubectl(["scale", "-n", ns, "md/autoscaled", "--replicas=3"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /spec\.replicas: Forbidden: set either replicas/);
    assert.equal((await read("autoscaled")).spec.replicas, undefined);
    // Known limit: without spec.replicas the API server cannot serve GET .../scale at all, so
    // scale-subresource clients (HPA, KEDA) cannot target an autoscaled ModelDeployment.
    const scale = await tb.kubectl([
      "get",
      "--raw",
      `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}/autoscaled/scale`,
    ]);
    assert.notEqual(scale.code, 0);
    assert.match(scale.stderr, /\.spec\.replicas/);
  });

  it("accepts a full status through the status subresource and shows it in the printer columns", async () => {
    const created = await kubectlApply(
      manifest(
        {
          model: { uri: "s3://bucket/m/model.json" },
          resources: { gpu: { count: 2 } },
          autoscaling: { maxReplicas: 4, metric: { target: 50 } },
        },
        "observed",
      ),
    );
    assert.equal(created.code, 0, created.stderr);
    const current = await read("observed");
    const status = {
      observedGeneration: current.metadata.generation,
      conditions: [
        {
          type: "Ready",
          status: "True",
          observedGeneration: current.metadata.generation,
          lastTransitionTime: "2026-01-02T03:04:05Z",
          reason: "AllReplicasReady",
          message: "2/3 replicas ready",
        },
      ],
      replicas: 3,
      readyReplicas: 2,
      replicasSummary: "2/3",
      selector: "maas.dev/deployment=observed",
      endpoint: `http://observed.${ns}.svc:8080`,
      autoscaling: {
        mode: "Stable",
        metricType: "RequestsPerSecond",
        currentMetric: 71.3,
        target: 50,
        desiredReplicas: 3,
        lastScaleTime: "2026-01-02T03:04:05Z",
        reason: "71.3 rps per replica against a target of 50",
      },
    };
    await tb.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: PLURAL,
      name: "observed",
      body: { ...current, status },
    });
    assert.deepEqual((await read("observed")).status, status);
    const table = await tb.kubectl(["get", "md", "observed", "-n", ns]);
    const [header, row] = table.stdout
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/));
    assert.deepEqual(header, ["NAME", "READY", "REPLICAS", "GPU", "METRIC", "TARGET", "ENDPOINT", "AGE"]);
    assert.deepEqual(row?.slice(0, 7), [
      "observed",
      "True",
      "2/3",
      "2",
      "71.3",
      "50",
      `http://observed.${ns}.svc:8080`,
    ]);
    const wait = await tb.kubectl(["wait", "-n", ns, "--for=condition=Ready", "md/observed", "--timeout=10s"]);
    assert.equal(wait.code, 0, wait.stderr);
  });

  it("rejects a status condition with an invalid reason, naming the field", async () => {
    const current = await read("observed");
    const bad = structuredClone(current);
    bad.status!.conditions![0]!.reason = "all replicas ready";
    await assert.rejects(
      tb.custom.replaceNamespacedCustomObjectStatus({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: PLURAL,
        name: "observed",
        body: bad,
      }),
      (err: Error) => err.message.includes("status.conditions[0].reason"),
    );
  });

  it("lists ModelDeployments under the short name md and the category maas", async () => {
    const byShort = await tb.kubectl(["get", "md", "-n", ns, "-o", "name"]);
    const byCategory = await tb.kubectl(["get", "maas", "-n", ns, "-o", "name"]);
    assert.equal(byShort.code, 0, byShort.stderr);
    assert.ok(byShort.stdout.includes("modeldeployment.maas.dev/defaults"));
    assert.equal(byCategory.stdout, byShort.stdout);
  });

  it("is GitOps-safe: applying the same manifest twice changes nothing", async () => {
    const doc = examples.find((e) => e.file === "autoscaled-promql.yaml")!.doc;
    const body = { ...doc, metadata: { name: "twice" } };
    const first = await kubectlApply(body, "--server-side", "--field-manager=gitops");
    assert.equal(first.code, 0, first.stderr);
    const before = await read("twice");
    const second = await kubectlApply(body, "--server-side", "--field-manager=gitops");
    assert.equal(second.code, 0, second.stderr);
    const after = await read("twice");
    assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion);
    assert.equal(after.metadata.generation, 1);
  });
});
