// The README's argocd-cm snippet is what users copy: it must be the health check the tests run.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { repoRoot } from "../testbed/paths.ts";

const key = "resource.customizations.health.maas.dev_ModelDeployment";

describe("the README's Argo CD resource.customizations snippet", () => {
  it("holds charts/maas-operator/docs/argocd/maas.dev/ModelDeployment/health.lua, unchanged", () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes(key));
    assert.equal(blocks.length, 1, `one yaml block in README.md sets ${key}`);
    const cm = parse(blocks[0]!) as { kind: string; metadata: { name: string }; data: Record<string, string> };
    assert.deepEqual([cm.kind, cm.metadata.name], ["ConfigMap", "argocd-cm"]);
    const lua = readFileSync(
      join(repoRoot, "charts", "maas-operator", "docs", "argocd", "maas.dev", "ModelDeployment", "health.lua"),
      "utf8",
    );
    assert.equal(cm.data[key], lua);
  });
});
