// The chart's Grafana dashboard is generated from the metric names the code exports: the committed file is
// current, and every panel queries something.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dashboardJson, generatedDashboardFile } from "../../scripts/grafana-dashboard.ts";
import { repoRoot } from "../testbed/paths.ts";
import { assertUpToDate } from "./generated-file.ts";

describe("the chart's Grafana dashboard (charts/maas-operator/dashboards/maas.json)", () => {
  const committed = readFileSync(join(repoRoot, generatedDashboardFile), "utf8");

  it("is what scripts/grafana-dashboard.ts generates", () => {
    assertUpToDate(generatedDashboardFile, committed, dashboardJson());
  });

  it("has panels that each query Prometheus, with distinct ids and refIds", () => {
    const d = JSON.parse(committed) as { panels: { id: number; targets: { expr: string; refId: string }[] }[] };
    assert.ok(d.panels.length >= 8);
    assert.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length);
    for (const p of d.panels) {
      assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr.trim() !== ""));
      assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length);
    }
  });
});
