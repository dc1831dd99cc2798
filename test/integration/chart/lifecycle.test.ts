// The maas-operator release's life on the test bed: helm upgrade with a changed value, helm upgrade to a
// chart whose CRD gained a field (and the documented CRD upgrade path: Helm never upgrades crds/, so the
// user applies them with kubectl), helm rollback, helm uninstall — and through all of it the users'
// ModelDeployments stay exactly as they were. The "next chart" is a copy of this one with a version bump
// and one new optional field in the CRD; the real CRD is applied again at the end.
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, parse, stringify } from "yaml";
import type { V1CustomResourceDefinition, V1JSONSchemaProps } from "@kubernetes/client-node";
import { CRD_NAME } from "../../../operator/src/api/index.ts";
import { useTestbed, type ExecResult, type Testbed } from "../../testbed/index.ts";
import { installCrd } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { manifest, model, readMd } from "../operator/helpers.ts";

const chartDir = join(repoRoot, "charts", "maas-operator");
const release = "maas-operator";
const crdFile = "maas.dev_modeldeployments.yaml";

function ok(r: ExecResult, what: string): string {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** spec.model's properties in a CRD's (only) version. */
function modelProperties(crd: V1CustomResourceDefinition): Record<string, V1JSONSchemaProps> {
  return crd.spec.versions[0]!.schema!.openAPIV3Schema!.properties!.spec!.properties!.model!.properties!;
}

/**
 * A copy of the chart as its next release would be: version 0.2.0 and a new optional field
 * spec.model.description in its CRD.
 */
function nextChart(dir: string): string {
  cpSync(chartDir, dir, { recursive: true });
  const chartYaml = join(dir, "Chart.yaml");
  const chart = parse(readFileSync(chartYaml, "utf8")) as Record<string, unknown>;
  writeFileSync(chartYaml, stringify({ ...chart, version: "0.2.0" }));
  const file = join(dir, "crds", crdFile);
  const crd = parse(readFileSync(file, "utf8")) as V1CustomResourceDefinition;
  modelProperties(crd).description = { type: "string", maxLength: 256, description: "What the model does." };
  writeFileSync(file, stringify(crd));
  return dir;
}

describe("the maas-operator release upgraded, rolled back and uninstalled on the test bed", function () {
  this.timeout(120_000);
  let tb: Testbed;
  let releaseNs: string;
  let mdNs: string;
  let next: string;
  const uids = new Map<string, string>();

  const deploymentArgs = async () =>
    (await tb.apps.readNamespacedDeployment({ namespace: releaseNs, name: release })).spec!.template.spec!
      .containers[0]!.args ?? [];
  const crd = () => tb.apiextensions.readCustomResourceDefinition({ name: CRD_NAME });
  const history = async () =>
    JSON.parse(
      ok(await tb.helm(["history", release, "--namespace", releaseNs, "--output", "json"]), "helm history"),
    ) as { revision: number; status: string; chart: string; description: string }[];
  /** Every ModelDeployment made before, with the same uid, generation and spec. */
  const assertModelDeploymentsKept = async (before: Map<string, string>) => {
    for (const [name, uid] of before) {
      const md = await readMd(tb, mdNs, name);
      assert.equal(md.metadata?.uid, uid, `${name} is the same object`);
      assert.equal(md.metadata?.generation, 1, `${name}'s spec was never changed`);
      assert.equal(md.metadata?.deletionTimestamp, undefined);
    }
  };
  const applyMd = (body: object, extra: string[] = []) =>
    tb.kubectl(["apply", "--validate=strict", "-n", mdNs, ...extra, "-f", "-"], { input: JSON.stringify(body) });

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    await installCrd(tb);
    releaseNs = await tb.createNamespace("chart-life");
    mdNs = await tb.createNamespace("chart-life-models");
    next = nextChart(join(tb.runDir, `maas-operator-next-${process.pid}`));
    ok(
      await tb.helm([
        "install",
        release,
        chartDir,
        "--namespace",
        releaseNs,
        "--set",
        `watchNamespaces={${mdNs}}`,
        "--set",
        "replicas=1",
      ]),
      "helm install",
    );
    for (const name of ["kept-a", "kept-b"]) {
      ok(await applyMd(manifest(name, { model, replicas: 1 })), `kubectl apply of ${name}`);
      uids.set(name, (await readMd(tb, mdNs, name)).metadata.uid!);
    }
  });

  after(async function () {
    this.timeout(60_000);
    // The repository's CRD again, for the suites that follow (the field added here is pruned).
    await installCrd(tb);
  });

  it("helm upgrade with a changed value rolls the operator's Deployment to it and leaves every ModelDeployment alone", async () => {
    assert.ok((await deploymentArgs()).includes("--log-level=info"));
    ok(
      await tb.helm([
        "upgrade",
        release,
        chartDir,
        "--namespace",
        releaseNs,
        "--reuse-values",
        "--set",
        "logLevel=debug",
      ]),
      "helm upgrade",
    );
    const args = await deploymentArgs();
    assert.ok(args.includes("--log-level=debug"), args.join(" "));
    assert.ok(args.includes(`--namespaces=${mdNs}`), "the values given at install are kept");
    assert.deepEqual(
      (await history()).map((h) => [h.revision, h.status]),
      [
        [1, "superseded"],
        [2, "deployed"],
      ],
    );
    await assertModelDeploymentsKept(uids);
  });

  it("helm upgrade to a chart whose CRD gained a field leaves the CRD as it was: kubectl apply of the chart's crds/ upgrades it", async () => {
    const before = await crd();
    assert.equal(modelProperties(before).description, undefined);
    ok(await tb.helm(["upgrade", release, next, "--namespace", releaseNs, "--reuse-values"]), "helm upgrade to 0.2.0");
    assert.equal((await history()).at(-1)!.chart, "maas-operator-0.2.0");
    const after = await crd();
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion, "Helm never touches crds/");
    // A manifest written for the new schema (the TypeScript types know no such field, as the old CRD).
    const described = {
      ...manifest("described", { model }),
      spec: { model: { ...model, description: "sentiment of a sentence" }, replicas: 1 },
    };
    const refused = await applyMd(described);
    assert.notEqual(refused.code, 0, "the old schema knows no spec.model.description");
    assert.match(refused.stderr, /unknown field "spec\.model\.description"/);

    // The documented path (README, "Upgrading"): the chart's CRDs with kubectl apply.
    ok(await tb.kubectl(["apply", "-f", join(next, "crds")]), "kubectl apply -f crds/");
    const upgraded = await crd();
    assert.equal(upgraded.metadata?.uid, before.metadata?.uid, "the CRD is updated in place, not replaced");
    assert.equal(modelProperties(upgraded).description?.type, "string");
    // The API server swaps in the new schema shortly after the update.
    await tb.waitFor("spec.model.description accepted", async () => (await applyMd(described)).code === 0, 30_000);
    const md = await readMd(tb, mdNs, "described");
    assert.equal((md.spec.model as { description?: string }).description, "sentiment of a sentence");
    uids.set("described", md.metadata.uid!);
    await assertModelDeploymentsKept(uids);
  });

  it("helm rollback returns the operator to the first revision's values and keeps the CRD and every ModelDeployment", async () => {
    ok(await tb.helm(["rollback", release, "1", "--namespace", releaseNs]), "helm rollback");
    const args = await deploymentArgs();
    assert.ok(args.includes("--log-level=info"), args.join(" "));
    const last = (await history()).at(-1)!;
    assert.deepEqual([last.revision, last.status, last.chart], [4, "deployed", "maas-operator-0.1.0"]);
    assert.match(last.description, /Rollback to 1/);
    // A rollback is not a CRD downgrade: the field and the object using it stay.
    assert.equal(modelProperties(await crd()).description?.type, "string");
    await assertModelDeploymentsKept(uids);
  });

  it("helm uninstall removes the operator and keeps the CRD and every ModelDeployment", async () => {
    const crdUid = (await crd()).metadata?.uid;
    const manifestKinds = parseAllDocuments(
      ok(await tb.helm(["get", "manifest", release, "--namespace", releaseNs]), "helm get manifest"),
    ).map((d) => (d.toJS() as { kind?: string } | null)?.kind);
    assert.ok(!manifestKinds.includes("CustomResourceDefinition"), "the CRD is not part of the release");
    ok(await tb.helm(["uninstall", release, "--namespace", releaseNs]), "helm uninstall");
    const gone = await tb.kubectl(["get", "deployment", release, "--namespace", releaseNs]);
    assert.match(gone.stderr, /NotFound/, "the operator's Deployment is removed");
    const role = await tb.kubectl(["get", "role", release, "--namespace", mdNs]);
    assert.match(role.stderr, /NotFound/, "its Role in the watched namespace is removed");
    assert.equal((await crd()).metadata?.uid, crdUid, "the same CRD object survives");
    await assertModelDeploymentsKept(uids);
    const listed = ok(await tb.kubectl(["get", "md", "-n", mdNs, "-o", "name"]), "kubectl get md");
    assert.deepEqual(
      listed.trim().split("\n").sort(),
      [...uids.keys()].map((n) => `modeldeployment.maas.dev/${n}`).sort(),
    );
  });
});
