import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { PrometheusClient, PrometheusError } from "../../../operator/src/autoscaler/prometheus.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { freePort } from "../../testbed/proc.ts";

describe("autoscaler: the Prometheus client against a real Prometheus (and against servers that are not one)", function () {
  let tb: Testbed;
  let prometheus: PrometheusClient;
  const servers: (Server | TcpServer)[] = [];

  before(async function () {
    this.timeout(300_000);
    tb = await useTestbed("api", { prometheus: true });
    prometheus = new PrometheusClient({ url: tb.prometheusUrl!, timeoutMs: 2_000 });
  });

  after(function () {
    for (const s of servers) s.close();
  });

  async function failure(client: PrometheusClient, query: string): Promise<PrometheusError> {
    try {
      await client.query(query);
    } catch (err) {
      assert.ok(err instanceof PrometheusError, `not a PrometheusError: ${String(err)}`);
      return err;
    }
    assert.fail(`${query} answered a number`);
  }

  it("reads one sample, from an instant vector of one series or a scalar", async function () {
    assert.equal(await prometheus.query("vector(41.5)"), 41.5);
    assert.equal(await prometheus.query("scalar(vector(3))"), 3);
  });

  it("names each way a real Prometheus answers with no usable number", async function () {
    const cases: [string, string, string, RegExp][] = [
      ["sum(rate(x[1m]) ", "query_error", "QueryFailed", /^Prometheus refused the query: bad_data: .*parse error/],
      ['maas_no_such_metric{maas_deployment="x"}', "empty", "MetricMissing", /returned no sample/],
      [
        'label_replace(vector(1), "a", "1", "", "") or label_replace(vector(2), "a", "2", "", "")',
        "multiple_series",
        "QueryFailed",
        /returned 2 series/,
      ],
      ["vector(0) / 0", "non_finite", "MetricInvalid", /is NaN, not a finite number/],
      ["vector(1) / 0", "non_finite", "MetricInvalid", /is \+Inf/],
      ["vector(-1)", "negative", "MetricInvalid", /cannot be negative/],
      ["up[1m]", "query_error", "QueryFailed", /returned a matrix result/],
    ];
    for (const [query, kind, reason, message] of cases) {
      const e = await failure(prometheus, query);
      assert.deepEqual([e.failure, e.reason], [kind, reason], query);
      assert.match(e.message, message, query);
    }
  });

  it("tells an unreachable Prometheus, a silent one and something else answering apart", async function () {
    const closed = await freePort();
    const refused = await failure(new PrometheusClient({ url: `http://127.0.0.1:${closed}` }), "vector(1)");
    assert.deepEqual([refused.failure, refused.reason], ["unreachable", "PrometheusUnreachable"]);
    assert.match(
      refused.message,
      new RegExp(`^Prometheus at http://127\\.0\\.0\\.1:${closed} is unreachable: .*ECONNREFUSED`),
    );

    // Accepts the connection and never answers.
    const silent = createTcpServer(() => undefined);
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentPort = (silent.address() as { port: number }).port;
    const timedOut = await failure(
      new PrometheusClient({ url: `http://127.0.0.1:${silentPort}`, timeoutMs: 300 }),
      "vector(1)",
    );
    assert.equal(timedOut.reason, "PrometheusUnreachable");
    assert.match(timedOut.message, /no answer within 0\.3s$/);

    // A proxy's error page, a 200 that is not the API, and an answer too large to be one sample.
    const other = createHttpServer((req, res) => {
      if (req.url?.startsWith("/bad-gateway/"))
        res.writeHead(502, { "content-type": "text/html" }).end("<html>Bad Gateway</html>");
      else if (req.url?.startsWith("/html/"))
        res.writeHead(200, { "content-type": "text/html" }).end("<html>login</html>");
      else res.writeHead(200).end("x".repeat(2 * 1024 * 1024));
    });
    servers.push(other);
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(other.address() as { port: number }).port}`;
    const gateway = await failure(new PrometheusClient({ url: `${base}/bad-gateway` }), "vector(1)");
    assert.deepEqual([gateway.failure, gateway.reason], ["http_error", "PrometheusUnreachable"]);
    assert.match(gateway.message, /answered 502 Bad Gateway: <html>Bad Gateway<\/html>$/);
    const html = await failure(new PrometheusClient({ url: `${base}/html` }), "vector(1)");
    assert.deepEqual([html.failure, html.reason], ["bad_response", "QueryFailed"]);
    assert.match(html.message, /not its query API's JSON: <html>login<\/html>$/);
    const huge = await failure(new PrometheusClient({ url: base }), "vector(1)");
    assert.match(huge.message, /larger than 1048576 bytes: it must return a single sample/);
  });

  it("refuses a --prometheus-url that is not an http(s) URL, naming the flag", function () {
    assert.throws(
      () => new PrometheusClient({ url: "prometheus:9090" }),
      /--prometheus-url must be http:\/\/ or https:\/\//,
    );
    assert.throws(() => new PrometheusClient({ url: "not a url" }), /--prometheus-url "not a url" is not a URL/);
  });
});
