/**
 * The maas Grafana dashboard, built from the metric names the serving image and the operator export
 * (serving-image/src/contract.ts, operator/src/controller/metrics.ts), so a renamed metric fails
 * `npm run generate`'s drift test instead of leaving a panel empty. scripts/generate-chart.ts writes it
 * to the chart, which ships it as a ConfigMap for Grafana's dashboard sidecar.
 */
import { MetricLabels, Metrics } from "../serving-image/src/contract.ts";
import { OperatorMetrics } from "../operator/src/controller/metrics.ts";

/** Path (relative to the repository root) of the generated dashboard. */
export const generatedDashboardFile = "charts/maas-operator/dashboards/maas.json";

/** The Grafana variables and macros the queries use; a test substitutes them as Grafana would. */
export const DashboardVariables = {
  datasource: "datasource",
  namespace: "namespace",
  model: "model",
  rateInterval: "$__rate_interval",
} as const;

const operatorMetrics = new OperatorMetrics();
/** An operator metric's name, checked against the operator's registry. */
function operatorMetric(name: string): string {
  if (!operatorMetrics.registry.getSingleMetric(name)) throw new Error(`the operator exports no metric ${name}`);
  return name;
}

const { namespace: ns, deployment: dep } = MetricLabels;
const v = DashboardVariables;
/** Serving-pod series of the selected models (labels the image stamps itself). */
const serving = `{${ns}=~"$${v.namespace}", ${dep}=~"$${v.model}"}`;
/** Operator series of the selected ModelDeployments (the autoscaler's namespace and name labels). */
const operator = (extra = "") => `{namespace=~"$${v.namespace}", name=~"$${v.model}"${extra}}`;
const byModel = `${ns}, ${dep}`;
const modelLegend = `{{${ns}}}/{{${dep}}}`;
const rate = (series: string) => `rate(${series}[${v.rateInterval}])`;

interface Target {
  expr: string;
  legendFormat: string;
}
interface Panel {
  title: string;
  description: string;
  unit: string;
  targets: Target[];
}

const quantile = (q: number, histogram: string, what: string): Target => ({
  expr: `histogram_quantile(${q}, sum by (le, ${byModel}) (${rate(`${histogram}_bucket${serving}`)}))`,
  legendFormat: `${modelLegend} ${what}`,
});

const panels: Panel[] = [
  {
    title: "Requests per second",
    description: `Every answered request, 429s and errors included (what the RequestsPerSecond autoscaler counts).`,
    unit: "reqps",
    targets: [
      { expr: `sum by (${byModel}) (${rate(`${Metrics.requestsTotal}${serving}`)})`, legendFormat: modelLegend },
    ],
  },
  {
    title: "Responses per second by status code",
    description: "429: the queue or the memory budget for request bodies was full; 504: a request timed out.",
    unit: "reqps",
    targets: [
      {
        expr: `sum by (${byModel}, ${MetricLabels.code}) (${rate(`${Metrics.requestsTotal}${serving}`)})`,
        legendFormat: `${modelLegend} {{${MetricLabels.code}}}`,
      },
    ],
  },
  {
    title: "Latency p50 / p95 / p99",
    description: "From the request's arrival to its response, queueing and batching included.",
    unit: "s",
    targets: [
      quantile(0.5, Metrics.requestDurationSeconds, "p50"),
      quantile(0.95, Metrics.requestDurationSeconds, "p95"),
      quantile(0.99, Metrics.requestDurationSeconds, "p99"),
    ],
  },
  {
    title: "Queue depth",
    description: "Requests admitted and waiting for an inference worker (bounded by spec.serving.maxQueue).",
    unit: "short",
    targets: [{ expr: `sum by (${byModel}) (${Metrics.queueDepth}${serving})`, legendFormat: modelLegend }],
  },
  {
    title: "In-flight requests",
    description: "Requests being received, queued or computed (what the Concurrency autoscaler averages).",
    unit: "short",
    targets: [{ expr: `sum by (${byModel}) (${Metrics.inflightRequests}${serving})`, legendFormat: modelLegend }],
  },
  {
    title: "Batch size (mean, p95)",
    description: "Rows per model execution: requests that arrive while a worker is busy are batched together.",
    unit: "short",
    targets: [
      {
        expr:
          `sum by (${byModel}) (${rate(`${Metrics.batchSize}_sum${serving}`)})` +
          ` / sum by (${byModel}) (${rate(`${Metrics.batchSize}_count${serving}`)})`,
        legendFormat: `${modelLegend} mean`,
      },
      quantile(0.95, Metrics.batchSize, "p95"),
    ],
  },
  {
    title: "Replicas: desired and ready",
    description:
      "Desired: what the autoscaler wants (autoscaled models only). Ready: serving pods whose model is loaded " +
      "and warm, as they report it.",
    unit: "short",
    targets: [
      {
        expr: `max by (namespace, name) (${operatorMetric("maas_operator_autoscaler_desired_replicas")}${operator()})`,
        legendFormat: "{{namespace}}/{{name}} desired",
      },
      { expr: `sum by (${byModel}) (${Metrics.modelReady}${serving})`, legendFormat: `${modelLegend} ready` },
    ],
  },
  {
    title: "Autoscaler: metric per replica and target",
    description: "The stable window's reading against the target; the autoscaler wants replicas so the two meet.",
    unit: "short",
    targets: [
      {
        expr: `max by (namespace, name) (${operatorMetric("maas_operator_autoscaler_metric_value")}${operator(', window="stable"')})`,
        legendFormat: "{{namespace}}/{{name}} per replica",
      },
      {
        expr: `max by (namespace, name) (${operatorMetric("maas_operator_autoscaler_metric_target")}${operator()})`,
        legendFormat: "{{namespace}}/{{name}} target",
      },
    ],
  },
  {
    title: "Autoscaler decisions",
    description:
      "Scale-ups and scale-downs; panic (a burst: replicas only go up) and holding (the metric cannot be read: " +
      "replicas held, see the ScalingActive condition).",
    unit: "short",
    targets: [
      {
        expr: `sum by (namespace, name, direction) (increase(${operatorMetric("maas_operator_autoscaler_scale_decisions_total")}${operator()}[${v.rateInterval}]))`,
        legendFormat: "{{namespace}}/{{name}} {{direction}}",
      },
      {
        expr: `max by (namespace, name) (${operatorMetric("maas_operator_autoscaler_panic")}${operator()})`,
        legendFormat: "{{namespace}}/{{name}} panic",
      },
      {
        expr: `max by (namespace, name) (${operatorMetric("maas_operator_autoscaler_holding")}${operator()})`,
        legendFormat: "{{namespace}}/{{name}} holding",
      },
    ],
  },
];

const datasource = { type: "prometheus", uid: `\${${v.datasource}}` };

/** The dashboard as Grafana's JSON model: two panels a row, variables for the data source, namespace and model. */
export function grafanaDashboard(): object {
  const variable = (name: string, label: string, query: string) => ({
    name,
    label,
    type: "query",
    datasource,
    query: { query, refId: name },
    definition: query,
    refresh: 2,
    multi: true,
    includeAll: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    sort: 1,
  });
  return {
    title: "maas: models as a service",
    uid: "maas-overview",
    description: "TensorFlow.js models served by maas: traffic, latency, batching, replicas and the autoscaler.",
    tags: ["maas", "model-serving"],
    editable: true,
    schemaVersion: 39,
    time: { from: "now-1h", to: "now" },
    refresh: "10s",
    templating: {
      list: [
        { name: v.datasource, label: "Data source", type: "datasource", query: "prometheus" },
        variable(v.namespace, "Namespace", `label_values(${Metrics.requestsTotal}, ${ns})`),
        variable(v.model, "Model", `label_values(${Metrics.requestsTotal}{${ns}=~"$${v.namespace}"}, ${dep})`),
      ],
    },
    panels: panels.map((p, i) => ({
      id: i + 1,
      type: "timeseries",
      title: p.title,
      description: p.description,
      datasource,
      gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      options: { legend: { displayMode: "list", placement: "bottom" }, tooltip: { mode: "multi" } },
      targets: p.targets.map((t, j) => ({
        datasource,
        expr: t.expr,
        legendFormat: t.legendFormat,
        refId: "ABCDEFGH"[j],
      })),
    })),
  };
}

/**
 * The committed file's text: the dashboard, its first line saying it is generated (JSON has no comments;
 * Grafana keeps unknown top-level keys such as its own "__inputs" and ignores them).
 */
export function dashboardJson(): string {
  const note = "Generated by scripts/grafana-dashboard.ts (npm run generate). Do not edit.";
  return `{"__generated": ${JSON.stringify(note)},\n${JSON.stringify(grafanaDashboard(), null, 2).slice(2)}\n`;
}
