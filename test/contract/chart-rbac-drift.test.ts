// The chart grants exactly the RBAC rules operator/src/rbac.ts declares: the generated rules template is
// current, and what `helm template` renders from it equals the declared rules. Uses the test bed's helm
// binary from the cache; no cluster is started.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { clusterRules, leaderElectionRules, type PolicyRule } from "../../operator/src/rbac.ts";
import { RULES_HEADER, chartRulesTemplate, generatedRulesFile } from "../../scripts/generate-chart.ts";
import { cacheRoot, readVersions, repoRoot } from "../testbed/paths.ts";
import { assertUpToDate } from "./generated-file.ts";

const chartDir = join(repoRoot, "charts", "maas-operator");

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: PolicyRule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

function helmBinary(): string {
  const helm = join(cacheRoot(), "bin", "helm");
  if (!existsSync(helm)) {
    assert.fail(`helm is missing at ${helm}: run \`npm run testbed:build\` once to build the test bed's binaries`);
  }
  return helm;
}

/** Renders the chart offline; the test bed's helm needs --kube-version, its built-in default is v1.20. */
function render(args: readonly string[] = []): Rendered[] {
  const out = execFileSync(
    helmBinary(),
    [
      "template",
      "maas-operator",
      chartDir,
      "--namespace",
      "maas-system",
      "--kube-version",
      readVersions().KUBERNETES_VERSION!,
      ...args,
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Rendered | null)
    .filter((d): d is Rendered => d !== null);
}

/** Rules in a canonical order, so equality ignores only order and not content. */
function canonical(rules: readonly PolicyRule[]): string[] {
  return rules
    .map((r) => JSON.stringify({ apiGroups: [...r.apiGroups], resources: [...r.resources], verbs: [...r.verbs] }))
    .sort();
}

describe("the chart's RBAC rules", () => {
  it(`${generatedRulesFile} equals what scripts/generate-chart.ts generates (run npm run generate after changing operator/src/rbac.ts)`, () => {
    const committed = readFileSync(join(repoRoot, generatedRulesFile), "utf8");
    assert.equal(committed.split("\n")[0], RULES_HEADER);
    const generated = chartRulesTemplate();
    assertUpToDate(generatedRulesFile, committed, generated);
  });

  it("no template other than the generated one writes a rule by hand", () => {
    for (const file of ["rbac.yaml", "deployment.yaml", "serviceaccount.yaml"]) {
      const text = readFileSync(join(chartDir, "templates", file), "utf8");
      assert.doesNotMatch(text, /apiGroups:|verbs:/, `templates/${file} must include the generated rules`);
    }
  });

  describe("rendered with default values (all namespaces)", () => {
    let docs: Rendered[] = [];
    before(() => {
      docs = render();
    });

    it("has one ClusterRole, holding exactly clusterRules, bound to the chart's ServiceAccount", () => {
      const roles = docs.filter((d) => d.kind === "ClusterRole");
      assert.equal(roles.length, 1);
      assert.deepEqual(canonical(roles[0]!.rules ?? []), canonical(clusterRules));
      assert.equal(roles[0]!.rules!.length, clusterRules.length, "no rule is rendered twice");
      const binding = docs.find((d) => d.kind === "ClusterRoleBinding");
      assert.deepEqual(binding?.roleRef, {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: roles[0]!.metadata.name,
      });
      const sa = docs.find((d) => d.kind === "ServiceAccount")!;
      assert.deepEqual(binding.subjects, [
        { kind: "ServiceAccount", name: sa.metadata.name, namespace: "maas-system" },
      ]);
    });

    it("has a leader election Role in the release namespace holding exactly leaderElectionRules", () => {
      const roles = docs.filter((d) => d.kind === "Role");
      assert.equal(roles.length, 1);
      assert.equal(roles[0]!.metadata.namespace, "maas-system");
      assert.deepEqual(canonical(roles[0]!.rules ?? []), canonical(leaderElectionRules));
    });
  });

  describe("rendered with watchNamespaces", () => {
    let docs: Rendered[] = [];
    before(() => {
      docs = render(["--set", "watchNamespaces={team-a,team-b}"]);
    });

    it("grants nothing cluster-wide", () => {
      assert.deepEqual(
        docs.filter((d) => d.kind === "ClusterRole" || d.kind === "ClusterRoleBinding"),
        [],
      );
    });

    it("has one Role with exactly clusterRules and one RoleBinding in each watched namespace", () => {
      for (const ns of ["team-a", "team-b"]) {
        const roles = docs.filter((d) => d.kind === "Role" && d.metadata.namespace === ns);
        assert.equal(roles.length, 1, `one Role in ${ns}`);
        assert.deepEqual(canonical(roles[0]!.rules ?? []), canonical(clusterRules));
        const bindings = docs.filter((d) => d.kind === "RoleBinding" && d.metadata.namespace === ns);
        assert.equal(bindings.length, 1, `one RoleBinding in ${ns}`);
        assert.equal(bindings[0]!.roleRef?.name, roles[0]!.metadata.name);
        assert.equal(bindings[0]!.subjects?.[0]?.namespace, "maas-system");
      }
      const leader = docs.filter((d) => d.kind === "Role" && d.metadata.namespace === "maas-system");
      assert.equal(leader.length, 1);
      assert.deepEqual(canonical(leader[0]!.rules ?? []), canonical(leaderElectionRules));
    });
  });
});
