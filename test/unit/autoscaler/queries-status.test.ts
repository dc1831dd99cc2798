import assert from "node:assert/strict";
import type { AutoscalingStatus } from "../../../operator/src/api/index.ts";
import {
  decisionStatus,
  holdingStatus,
  recommenderSpec,
  stateFromStatus,
  worthWriting,
} from "../../../operator/src/autoscaler/autoscaling-status.ts";
import { PrometheusError, sampleValue } from "../../../operator/src/autoscaler/prometheus.ts";
import {
  escapeLabelValue,
  evaluationQueries,
  formatNumber,
  metricQuery,
  substitutePlaceholders,
} from "../../../operator/src/autoscaler/queries.ts";
import { initialState, recommend } from "../../../operator/src/autoscaler/recommender.ts";
import { MetricLabels, Metrics } from "../../../serving-image/src/contract.ts";
import { md } from "../reconcile/fixtures.ts";

describe("autoscaler queries", function () {
  it("builds each metric type's query from the contract's metric names and labels", function () {
    const sel = `{${MetricLabels.namespace}="ml",${MetricLabels.deployment}="vision"}`;
    assert.deepEqual(metricQuery({ type: "RequestsPerSecond" }, "ml", "vision", 60), {
      query: `sum(rate(${Metrics.requestsTotal}${sel}[60s]))`,
      kind: "total",
    });
    assert.deepEqual(metricQuery({ type: "Concurrency" }, "ml", "vision", 6), {
      query: `sum(avg_over_time(${Metrics.inflightRequests}${sel}[6s]))`,
      kind: "total",
    });
    const latency = metricQuery({ type: "LatencyP95" }, "ml", "vision", 60);
    assert.equal(latency.kind, "perReplica");
    assert.match(
      latency.query,
      /^histogram_quantile\(0\.95, sum by \(le\) \(rate\(maas_request_duration_seconds_bucket\{/,
    );
  });

  it("substitutes $namespace, $deployment and $window in a user's query, escaping label values", function () {
    const q = 'sum(rate(x{ns="$namespace",d="$deployment"}[$window])) / $namespaces';
    assert.equal(substitutePlaceholders(q, "ml", "vision", "6s"), 'sum(rate(x{ns="ml",d="vision"}[6s])) / $namespaces');
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
    const inject = substitutePlaceholders('x{d="$deployment"}', "ml", '"} or vector(1) or x{a="', "1s");
    assert.equal(inject, 'x{d="\\"} or vector(1) or x{a=\\""}', "a quote cannot end the label value early");
  });

  it("widens windows shorter than the minimum range (rate needs samples) and reports the windows it used", function () {
    const q = evaluationQueries({ type: "RequestsPerSecond" }, "ml", "v", { stableSeconds: 60, panicSeconds: 6 }, 8);
    assert.deepEqual(q.windows, { stableSeconds: 60, panicSeconds: 8 });
    assert.match(q.panic.query, /\[8s\]/);
    const user = evaluationQueries(
      { type: "PromQL", query: "avg(rate(x[$window]))" },
      "ml",
      "v",
      { stableSeconds: 30, panicSeconds: 3 },
      4,
    );
    assert.deepEqual([user.stable.query, user.panic.query], ["avg(rate(x[30s]))", "avg(rate(x[4s]))"]);
  });

  it("formats numbers to three significant digits", function () {
    assert.deepEqual([41.2999, 0.01234, 123.4, 0, 2.5, 1e-9].map(formatNumber), [
      "41.3",
      "0.0123",
      "123",
      "0",
      "2.5",
      "0",
    ]);
  });
});

describe("Prometheus answers", function () {
  const vector = (...values: string[]) => ({
    resultType: "vector",
    result: values.map((v, i) => ({ metric: { pod: `p${i}` }, value: [1700000000, v] })),
  });
  const failure = (data: { resultType?: string; result?: unknown }) => {
    try {
      sampleValue(data);
    } catch (err) {
      assert.ok(err instanceof PrometheusError);
      return [err.failure, err.reason, err.message];
    }
    assert.fail("expected a PrometheusError");
  };

  it("reads one sample of a vector or a scalar", function () {
    assert.equal(sampleValue(vector("41.5")), 41.5);
    assert.equal(sampleValue({ resultType: "scalar", result: [1700000000, "3"] }), 3);
  });

  it("names every way an answer is not one usable number", function () {
    assert.deepEqual(failure(vector()).slice(0, 2), ["empty", "MetricMissing"]);
    const many = failure(vector("1", "2"));
    assert.deepEqual(many.slice(0, 2), ["multiple_series", "QueryFailed"]);
    assert.match(String(many[2]), /returned 2 series .*aggregate it/);
    assert.deepEqual(failure(vector("NaN")).slice(0, 2), ["non_finite", "MetricInvalid"]);
    assert.deepEqual(failure(vector("+Inf")).slice(0, 2), ["non_finite", "MetricInvalid"]);
    assert.deepEqual(failure(vector("-1")).slice(0, 2), ["negative", "MetricInvalid"]);
    assert.deepEqual(failure(vector("twelve")).slice(0, 2), ["not_a_number", "MetricInvalid"]);
    assert.deepEqual(failure({ resultType: "matrix", result: [] }).slice(0, 2), ["query_error", "QueryFailed"]);
  });
});

describe("status.autoscaling", function () {
  const autoscaled = md({
    autoscaling: { minReplicas: 1, maxReplicas: 10, metric: { target: 10 }, scaleDownDelaySeconds: 300 },
  });
  const spec = recommenderSpec(autoscaled.spec.autoscaling!);
  const windows = { stableSeconds: 60, panicSeconds: 6 };
  const t0 = Date.parse("2026-11-29T12:00:00Z");

  it("round-trips the recommender's state through status, so a restart keeps the scale-down delay", function () {
    let d = recommend(spec, initialState(1), { stable: 80, panic: 10, kind: "total", ready: 1 }, t0);
    d = recommend(spec, d.state, { stable: 20, panic: 20, kind: "total", ready: 8 }, t0 + 30_000);
    const status = decisionStatus("RequestsPerSecond", spec, d, windows, false, t0 + 30_000);
    assert.equal(status.desiredReplicas, 8);
    assert.match(status.reason ?? "", /kept until 2026-11-29T12:05:30Z by scaleDownDelaySeconds 300/);
    const restored = stateFromStatus({ ...autoscaled, status: { autoscaling: status } }, spec);
    assert.deepEqual(restored.history, d.state.history);
    // The restored state scales down at the same moment as the original would.
    const at = (state: typeof restored, t: number) =>
      recommend(spec, state, { stable: 20, panic: 20, kind: "total", ready: 8 }, t).desired;
    for (const t of [t0 + 329_000, t0 + 331_000]) assert.equal(at(restored, t), at(d.state, t));
    assert.equal(at(restored, t0 + 329_000), 8);
    assert.equal(at(restored, t0 + 331_000), 4);
  });

  it("is not rewritten for an unchanged decision, nor for metric noise within the tolerance", function () {
    const base: AutoscalingStatus = {
      mode: "Stable",
      desiredReplicas: 3,
      currentMetric: 10,
      panicMetric: 11,
      target: 10,
      lastEvaluationTime: "2026-11-29T12:00:00Z",
      reason: "10 req/s",
    };
    const later = { ...base, lastEvaluationTime: "2026-11-29T12:00:02Z", reason: "10.3 req/s", currentMetric: 10.3 };
    assert.equal(worthWriting(base, later, 0.1), false);
    assert.equal(worthWriting(base, { ...later, panicMetric: 19 }, 0.1), false, "the panic window alone is noise");
    assert.equal(worthWriting(base, { ...later, currentMetric: 10.9 }, 0.1), false);
    assert.equal(worthWriting(base, { ...later, currentMetric: 11.1 }, 0.1), true);
    assert.equal(worthWriting(base, { ...later, desiredReplicas: 4 }, 0.1), true);
    assert.equal(worthWriting(undefined, base, 0.1), true);
    // A recommendation that only left the scale-down window is no news; a new one is.
    const history = (...r: [string, number][]) => r.map(([time, replicas]) => ({ time, replicas }));
    const withHistory = { ...base, recommendations: history(["12:00:00Z", 1], ["12:01:00Z", 3]) };
    assert.equal(worthWriting(withHistory, { ...withHistory, recommendations: history(["12:01:00Z", 3]) }, 0.1), false);
    const added = history(["12:00:00Z", 1], ["12:01:00Z", 3], ["12:06:00Z", 2]);
    assert.equal(worthWriting(withHistory, { ...withHistory, recommendations: added }, 0.1), true);
  });

  it("holds the replicas with the cause and keeps the first time it was seen", function () {
    const state = { ...initialState(4), history: [{ time: t0, replicas: 4 }] };
    const problem = { reason: "PrometheusUnreachable" as const, message: "Prometheus at http://p is unreachable" };
    const first = holdingStatus(autoscaled.spec.autoscaling!, spec, state, undefined, problem, t0 + 5_000);
    assert.deepEqual(
      [first.mode, first.desiredReplicas, first.holdingSince, first.holdingReason],
      ["Holding", 4, "2026-11-29T12:00:05Z", "PrometheusUnreachable"],
    );
    assert.equal(first.reason, "Holding 4 replicas since 2026-11-29T12:00:05Z: Prometheus at http://p is unreachable");
    assert.deepEqual(first.recommendations, [{ time: "2026-11-29T12:00:00Z", replicas: 4 }]);
    const again = holdingStatus(autoscaled.spec.autoscaling!, spec, state, first, problem, t0 + 60_000);
    assert.equal(again.holdingSince, first.holdingSince);
    assert.equal(worthWriting(first, again, 0.1), false);
  });
});
