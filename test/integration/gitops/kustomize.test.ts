// The GitOps repository layout in crds/examples/gitops/ as Argo CD and Flux use it: kustomize overlays
// applied to the API server, and applied again without changing anything (a GitOps tool that re-syncs
// an unchanged commit must see no drift and make no write).
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { GROUP, KIND, PLURAL, VERSION, type ModelDeployment } from "../../../operator/src/api/index.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { installCrd } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";

const gitopsDir = join(repoRoot, "crds", "examples", "gitops");
const overlays = [
  { env: "staging", namespace: "ml-staging", version: "4" },
  { env: "production", namespace: "ml", version: "3" },
];

describe("crds/examples/gitops: kustomize overlays applied with kubectl apply -k", function () {
  let tb: Testbed;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    await installCrd(tb);
  });

  const ok = async (args: string[]) => {
    const r = await tb.kubectl(args);
    assert.equal(r.code, 0, `kubectl ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
    return r;
  };
  const read = async (namespace: string) =>
    (await tb.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      name: "sentiment",
    })) as ModelDeployment;

  for (const o of overlays) {
    describe(`overlays/${o.env}`, () => {
      const dir = join(gitopsDir, "overlays", o.env);

      after(async () => {
        await tb.kubectl(["delete", "-k", dir, "--wait=false"]);
      });

      it("renders one ModelDeployment, its environment's version, in its own namespace", async () => {
        const rendered = parseAllDocuments((await ok(["kustomize", dir])).stdout).map(
          (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } },
        );
        const models = rendered.filter((d) => d.kind === KIND) as unknown as ModelDeployment[];
        assert.equal(models.length, 1);
        assert.equal(models[0]!.metadata.namespace, o.namespace);
        assert.equal(models[0]!.spec.model.version, o.version);
        assert.deepEqual(rendered.map((d) => d.kind).sort(), [KIND, "Namespace"]);
      });

      it("applies with strict field validation and no warning; a second apply changes nothing: no patch, no new resourceVersion, no diff", async () => {
        // A server-side dry run cannot go first: the overlay's namespace does not exist until applied.
        const applied = await ok(["apply", "-k", dir, "--validate=strict"]);
        assert.equal(applied.stderr, "");
        const first = await read(o.namespace);
        const again = await ok(["apply", "-k", dir]);
        assert.deepEqual(again.stdout.trim().split("\n"), [
          `namespace/${o.namespace} unchanged`,
          `modeldeployment.${GROUP}/sentiment unchanged`,
        ]);
        const second = await read(o.namespace);
        assert.equal(second.metadata.resourceVersion, first.metadata.resourceVersion);
        assert.equal(second.metadata.generation, 1);
        const diff = await tb.kubectl(["diff", "-k", dir]);
        assert.equal(diff.code, 0, `kubectl diff -k found drift:\n${diff.stdout}${diff.stderr}`);
      });

      it("server-side applied twice (as Flux applies), the second apply writes nothing", async () => {
        const manager = ["--server-side", "--field-manager=gitops-test", "--force-conflicts"];
        await ok(["apply", "-k", dir, ...manager]);
        const first = await read(o.namespace);
        await ok(["apply", "-k", dir, ...manager]);
        const second = await read(o.namespace);
        assert.equal(second.metadata.resourceVersion, first.metadata.resourceVersion);
      });
    });
  }

  it("keeps base/sentiment.yaml a plain manifest that kubectl apply -f accepts on its own", async () => {
    const r = await ok([
      "apply",
      "-f",
      join(gitopsDir, "base", "sentiment.yaml"),
      "-n",
      "default",
      "--dry-run=server",
      "--validate=strict",
    ]);
    assert.match(r.stdout, /modeldeployment\.maas\.dev\/sentiment created \(server dry run\)/);
  });
});
