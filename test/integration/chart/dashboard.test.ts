// The chart's Grafana dashboard against the test bed's Prometheus: during a short load on real serving
// pods that the operator's autoscaler scales up, every panel's every query parses and returns data. The
// operator's /metrics is scraped with its series' own labels kept (honor_labels), as the chart's
// ServiceMonitor does, under a target label namespace=maas-system that would otherwise replace them.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DashboardVariables, generatedDashboardFile } from "../../../scripts/grafana-dashboard.ts";
import { OPERATOR_NAMESPACE } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { createMd, manifest, readMd, waitForCondition } from "../operator/helpers.ts";
import { autoscaledSpec, autoscalerBed, halfLoad } from "../autoscaler/fixtures.ts";

interface Dashboard {
  panels: { title: string; targets: { expr: string; refId: string }[] }[];
}

/** What Grafana substitutes before a query reaches Prometheus, with values for this test. */
function asGrafanaSends(expr: string, namespace: string): string {
  const v = DashboardVariables;
  return expr
    .replaceAll(`$${v.namespace}`, namespace)
    .replaceAll(`$${v.model}`, ".*")
    .replaceAll(v.rateInterval, "20s");
}

describe("the chart's Grafana dashboard on the test bed's Prometheus", function () {
  const bed = autoscalerBed("dashboard");
  const dashboard = JSON.parse(readFileSync(join(repoRoot, generatedDashboardFile), "utf8")) as Dashboard;

  it("has every panel's queries parse and return data during a short load that the autoscaler scales for", async function () {
    this.timeout(240_000);
    const { tb, ns, uri, op } = bed;
    tb.addScrapeTarget(`127.0.0.1:${op.healthPort}`, { job: "maas-operator", namespace: OPERATOR_NAMESPACE });
    const name = "dash";
    await createMd(
      tb,
      ns,
      manifest(name, autoscaledSpec(uri, { metric: { type: "RequestsPerSecond", target: 5 }, maxReplicas: 3 })),
    );
    await waitForCondition(tb, ns, name, "Ready", "True", 120_000);
    const load = halfLoad(tb, ns, name, () => 12);
    bed.running.push(load);
    await load.start();
    // 12 req/s against 5 per replica: the autoscaler decides a scale-up (a decision to count).
    await tb.waitFor(
      "a scale-up decision",
      async () => ((await readMd(tb, ns, name)).status?.autoscaling?.desiredReplicas ?? 1) >= 2,
      90_000,
    );
    // A rate over 20 s needs a few scrapes of the new series on every side.
    await sleep(10_000);

    const empty: string[] = [];
    for (const panel of dashboard.panels) {
      for (const t of panel.targets) {
        const query = asGrafanaSends(t.expr, ns);
        const res = await fetch(`${tb.prometheusUrl!}/api/v1/query?query=${encodeURIComponent(query)}`);
        const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
        assert.equal(body.status, "success", `${panel.title} ${t.refId}: ${query}: ${body.error ?? ""}`);
        const n = body.data?.result.length ?? 0;
        console.log(`      ${panel.title} ${t.refId}: ${n} series`);
        if (n === 0) empty.push(`${panel.title} ${t.refId}: ${query}`);
      }
    }
    assert.deepEqual(empty, [], "every query returns data");
  });
});
