/**
 * The Prometheus Operator's CRDs, so the chart's PodMonitor and ServiceMonitor can be validated by the
 * API server like everything else it renders. They ship in the operator's Go module
 * (example/prometheus-operator-crd/), which the ordinary `go mod download` fetches from the module
 * proxy into the module cache, at the version pinned in versions.env.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { readVersions } from "./paths.ts";

/** Paths of the CRD files for `kinds` (plural, lowercase: "podmonitors"). */
export function prometheusOperatorCrds(kinds: readonly string[]): string[] {
  const module = `github.com/prometheus-operator/prometheus-operator@${readVersions().PROMETHEUS_OPERATOR_VERSION!}`;
  const r = spawnSync("go", ["mod", "download", "-json", module], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`go mod download ${module} failed:\n${r.stderr}${r.stdout}`);
  const dir = (JSON.parse(r.stdout) as { Dir: string }).Dir;
  return kinds.map((k) => join(dir, "example", "prometheus-operator-crd", `monitoring.coreos.com_${k}.yaml`));
}
