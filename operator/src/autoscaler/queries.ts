/**
 * The PromQL the autoscaler asks Prometheus, built from the serving image's metric names and labels
 * in the operator/image contract, so the queries cannot drift from what the pods export. Pure.
 */
import type { AutoscalingMetric, MetricType } from "../api/index.ts";
import { MetricLabels, Metrics } from "../../../serving-image/src/contract.ts";

/**
 * How a query's value relates to replicas. `total`: summed over every serving pod (requests per
 * second, in-flight requests), so the demand in replicas is value / target whatever the number of
 * pods. `perReplica`: already a per-replica figure (a latency, a user's PromQL), so the demand is
 * ready replicas × value / target.
 */
export type MetricKind = "total" | "perReplica";

export interface MetricQuery {
  query: string;
  kind: MetricKind;
}

/** The two windows one evaluation reads. */
export interface QueryWindows {
  stableSeconds: number;
  panicSeconds: number;
}

/** The placeholders a user's PromQL may use. */
export const Placeholders = {
  namespace: "$namespace",
  deployment: "$deployment",
  window: "$window",
} as const;

/** `s` as the inside of a double-quoted PromQL string. */
export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A range as a PromQL duration: whole seconds. */
export function promDuration(seconds: number): string {
  return `${Math.max(1, Math.round(seconds))}s`;
}

/** The label matcher that picks one ModelDeployment's serving pods by the labels the image stamps. */
export function servingSelector(namespace: string, deployment: string): string {
  return `{${MetricLabels.namespace}="${escapeLabelValue(namespace)}",${MetricLabels.deployment}="${escapeLabelValue(deployment)}"}`;
}

/**
 * Replaces `$namespace`, `$deployment` and `$window` in a user's query. Names are substituted as
 * escaped label-value text (they go inside the quotes the user wrote); a placeholder followed by
 * more identifier characters (`$namespaces`) is left alone.
 */
export function substitutePlaceholders(query: string, namespace: string, deployment: string, window: string): string {
  const values: Record<string, string> = {
    [Placeholders.namespace]: escapeLabelValue(namespace),
    [Placeholders.deployment]: escapeLabelValue(deployment),
    [Placeholders.window]: window,
  };
  return query.replace(/\$(namespace|deployment|window)(?![A-Za-z0-9_])/g, (token) => values[token] ?? token);
}

/** The query for one metric type over one window. */
export function metricQuery(
  metric: Pick<AutoscalingMetric, "type" | "query">,
  namespace: string,
  deployment: string,
  windowSeconds: number,
): MetricQuery {
  const sel = servingSelector(namespace, deployment);
  const w = promDuration(windowSeconds);
  const type: MetricType = metric.type ?? "RequestsPerSecond";
  switch (type) {
    case "RequestsPerSecond":
      // Every answer counts, 429s included: a refused request is demand the replicas did not meet.
      return { query: `sum(rate(${Metrics.requestsTotal}${sel}[${w}]))`, kind: "total" };
    case "Concurrency":
      return { query: `sum(avg_over_time(${Metrics.inflightRequests}${sel}[${w}]))`, kind: "total" };
    case "LatencyP95": {
      // histogram_quantile is NaN when no request arrived in the window; `>= 0` drops that NaN, and the
      // right side then answers 0 — but only if the pods are scraped and idle, so "no data" stays empty.
      const buckets = `${Metrics.requestDurationSeconds}_bucket${sel}`;
      const count = `${Metrics.requestDurationSeconds}_count${sel}`;
      return {
        query: `histogram_quantile(0.95, sum by (le) (rate(${buckets}[${w}]))) >= 0 or sum(rate(${count}[${w}])) == 0`,
        kind: "perReplica",
      };
    }
    case "PromQL":
      return { query: substitutePlaceholders(metric.query ?? "", namespace, deployment, w), kind: "perReplica" };
  }
}

/**
 * Both queries of one evaluation. Windows shorter than `minRangeSeconds` (a few scrape intervals:
 * `rate` needs at least two samples) are widened to it, and the effective windows are returned so
 * status can name them.
 */
export function evaluationQueries(
  metric: Pick<AutoscalingMetric, "type" | "query">,
  namespace: string,
  deployment: string,
  windows: QueryWindows,
  minRangeSeconds: number,
): { stable: MetricQuery; panic: MetricQuery; windows: QueryWindows } {
  const effective = {
    stableSeconds: Math.max(windows.stableSeconds, minRangeSeconds),
    panicSeconds: Math.max(windows.panicSeconds, minRangeSeconds),
  };
  return {
    stable: metricQuery(metric, namespace, deployment, effective.stableSeconds),
    panic: metricQuery(metric, namespace, deployment, effective.panicSeconds),
    windows: effective,
  };
}

/** How a metric's per-replica value reads to a person ("41.3 req/s"). */
export function formatMetric(type: MetricType | undefined, value: number): string {
  const n = formatNumber(value);
  switch (type ?? "RequestsPerSecond") {
    case "RequestsPerSecond":
      return `${n} req/s`;
    case "Concurrency":
      return `${n} in-flight requests`;
    case "LatencyP95":
      return `${n} s p95 latency`;
    case "PromQL":
      return n;
  }
}

/** Three significant digits, no exponent, no trailing zeros. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : Math.min(6, 2 - Math.floor(Math.log10(abs)));
  return String(Number(value.toFixed(digits)));
}
