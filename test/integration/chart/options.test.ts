// The chart with every option on, validated by the API server; its NetworkPolicies checked against the
// pods they are meant for; its Grafana dashboard ConfigMap. The test bed has no CNI that enforces
// NetworkPolicies, so what is shown is that the API server accepts them, that they select exactly the
// operator's and the serving pods and name their ports, and that no rule admits more than the peers
// the user names.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";
import type { V1Deployment } from "@kubernetes/client-node";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { PortNames } from "../../../serving-image/src/contract.ts";
import { generatedDashboardFile } from "../../../scripts/grafana-dashboard.ts";
import { useTestbed, type ExecResult, type Testbed } from "../../testbed/index.ts";
import { installCrd } from "../../testbed/operator.ts";
import { readVersions, repoRoot } from "../../testbed/paths.ts";
import { prometheusOperatorCrds } from "../../testbed/prometheus-operator.ts";

const chartDir = join(repoRoot, "charts", "maas-operator");
const release = "maas-operator";
const monitoringApis = ["monitoring.coreos.com/v1/PodMonitor", "monitoring.coreos.com/v1/ServiceMonitor"];

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

interface Rule {
  from?: unknown[];
  to?: unknown[];
  ports?: { port: string | number; protocol?: string }[];
}
/** A rendered NetworkPolicy as YAML has it (`from`, not the client library's `_from`). */
interface Policy extends Doc {
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes: string[];
    ingress: Rule[];
    egress?: Rule[];
  };
}

const docsOf = (manifest: string) =>
  parseAllDocuments(manifest)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);

function ok(r: ExecResult, what: string): string {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

const peer = (ns: string, app?: string) => ({
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
  ...(app ? { podSelector: { matchLabels: { app } } } : {}),
});

/** Every `enabled` toggle in values.yaml, as a dotted path. */
function toggles(values: unknown, path: string[] = []): string[] {
  if (typeof values !== "object" || values === null || Array.isArray(values)) return [];
  return Object.entries(values).flatMap(([k, v]) =>
    k === "enabled" ? [[...path].join(".")] : toggles(v, [...path, k]),
  );
}
const at = (values: unknown, path: string) =>
  path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], values);

describe("the maas-operator chart with every option on", function () {
  this.timeout(120_000);
  let tb: Testbed;
  let releaseNs: string;
  let servingNs: string[];
  let dashboardNs: string;
  let valuesFile: string;
  let allOn: Record<string, unknown>;
  const kubeVersion = readVersions().KUBERNETES_VERSION!;
  const template = (args: string[]) =>
    tb.helm(["template", release, chartDir, "--namespace", releaseNs, "--kube-version", kubeVersion, ...args]);

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    await installCrd(tb);
    ok(
      await tb.kubectl([
        "apply",
        "--server-side",
        ...prometheusOperatorCrds(["podmonitors", "servicemonitors"]).flatMap((f) => ["-f", f]),
      ]),
      "applying the Prometheus Operator's CRDs",
    );
    releaseNs = await tb.createNamespace("chart-all");
    servingNs = [await tb.createNamespace("chart-all-a"), await tb.createNamespace("chart-all-b")];
    dashboardNs = await tb.createNamespace("chart-all-grafana");
    allOn = {
      prometheus: { url: "http://prometheus-operated.monitoring.svc:9090" },
      serviceMonitor: { enabled: true, labels: { release: "kube-prometheus" } },
      podMonitor: { enabled: true, labels: { release: "kube-prometheus" } },
      grafanaDashboard: { enabled: true, namespace: dashboardNs, annotations: { grafana_folder: "maas" } },
      networkPolicy: {
        serving: {
          enabled: true,
          namespaces: servingNs,
          from: [peer("web", "frontend")],
          metricsFrom: [peer("monitoring")],
        },
        operator: {
          enabled: true,
          apiServer: { cidrs: ["10.0.0.1/32", "192.168.10.0/24"] },
          prometheus: { to: [peer("monitoring", "prometheus")] },
          metricsFrom: [peer("monitoring")],
        },
      },
      podDisruptionBudget: { enabled: true },
      topologySpread: { enabled: true },
      imagePullSecrets: [{ name: "registry" }],
      podAnnotations: { "example.com/scrape": "false" },
      podLabels: { team: "ml-platform" },
      priorityClassName: "system-cluster-critical",
      nodeSelector: { "kubernetes.io/os": "linux" },
      tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }],
      affinity: {
        nodeAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 1, preference: { matchExpressions: [{ key: "pool", operator: "In", values: ["system"] }] } },
          ],
        },
      },
      serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/maas" } },
      service: { annotations: { "example.com/owner": "ml-platform" } },
    };
    valuesFile = join(tb.runDir, "chart-all-on.yaml");
    writeFileSync(valuesFile, stringify(allOn));
  });

  it("turns on every toggle values.yaml has", () => {
    const defaults = parse(readFileSync(join(chartDir, "values.yaml"), "utf8")) as unknown;
    const off = toggles(defaults).filter((t) => at(allOn, `${t}.enabled`) !== true);
    assert.deepEqual(off, [], "a new optional part of the chart belongs in this test");
  });

  for (const scope of ["all namespaces", "a list of watched namespaces"] as const) {
    it(`renders objects the API server accepts with strict field validation and no warning (${scope})`, async () => {
      const extra = scope === "all namespaces" ? [] : ["--set", `watchNamespaces={${servingNs.join(",")}}`];
      const manifest = ok(
        await template(["-f", valuesFile, ...extra, ...monitoringApis.flatMap((a) => ["--api-versions", a])]),
        "helm template",
      );
      const docs = docsOf(manifest);
      const kinds = new Set(docs.map((d) => d.kind));
      for (const kind of [
        "ServiceAccount",
        scope === "all namespaces" ? "ClusterRole" : "Role",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PodMonitor",
        "NetworkPolicy",
        "ConfigMap",
      ]) {
        assert.ok(kinds.has(kind), `a ${kind} is rendered`);
      }
      assert.equal(docs.filter((d) => d.kind === "NetworkPolicy").length, servingNs.length + 1);
      const r = await tb.kubectl(["apply", "--dry-run=server", "--validate=strict", "-f", "-"], { input: manifest });
      ok(r, "kubectl apply --dry-run=server --validate=strict");
      assert.equal(r.stdout.split("\n").filter((l) => l.includes("(server dry run)")).length, docs.length);
      assert.equal(r.stderr, "", "no warnings");
    });
  }

  describe("NetworkPolicies", () => {
    let docs: Doc[];
    before(async () => {
      docs = docsOf(
        ok(
          await template(["-f", valuesFile, ...monitoringApis.flatMap((a) => ["--api-versions", a])]),
          "helm template",
        ),
      );
    });
    const policies = () => docs.filter((d) => d.kind === "NetworkPolicy") as Policy[];

    it("let only the named peers call the serving pods' model port, and only metricsFrom scrape their metrics port", () => {
      // The labels and port names the operator gives every serving pod.
      const pod = desiredDeployment(
        {
          apiVersion: "maas.dev/v1alpha1",
          kind: "ModelDeployment",
          metadata: { name: "m", namespace: servingNs[0]!, uid: "u" },
          spec: { model: { uri: "https://x/model.json" } },
        },
        { servingImage: "x" },
      ).spec!.template;
      const ports = pod.spec!.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      const serving = policies().filter((p) => p.metadata.name === `${release}-serving`);
      assert.deepEqual(serving.map((p) => p.metadata.namespace).sort(), [...servingNs].sort());
      for (const p of serving) {
        for (const [k, v] of Object.entries(p.spec.podSelector.matchLabels ?? {})) {
          assert.equal(pod.metadata!.labels![k], v, `serving pods carry ${k}=${v}`);
        }
        assert.deepEqual(p.spec.policyTypes, ["Ingress"], "egress stays open: the model is fetched from anywhere");
        assert.deepEqual(
          p.spec.ingress.map((r) => [r.from, r.ports!.map((x) => x.port)]),
          [
            [[peer("web", "frontend")], [PortNames.http]],
            [[peer("monitoring")], [PortNames.metrics]],
          ],
        );
      }
      assert.ok(ports.includes(PortNames.http) && ports.includes(PortNames.metrics));
    });

    it("admit nobody to the serving pods when no peer is named (an empty from would admit everyone)", async () => {
      const none = docsOf(
        ok(
          await template([
            "--set",
            "networkPolicy.serving.enabled=true",
            "--set",
            `networkPolicy.serving.namespaces={${servingNs[0]!}}`,
          ]),
          "helm template",
        ),
      ).find((d) => d.kind === "NetworkPolicy") as Policy;
      assert.deepEqual(none.spec.ingress, []);
    });

    it("let the operator reach only the API server, DNS and Prometheus, and be scraped only by metricsFrom", () => {
      const deployment = docs.find((d) => d.kind === "Deployment") as unknown as V1Deployment;
      const labels = deployment.spec!.template.metadata!.labels!;
      const policy = policies().find((p) => p.metadata.name === release)!;
      for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels ?? {})) assert.equal(labels[k], v);
      const healthPort = deployment.spec!.template.spec!.containers[0]!.ports![0]!.name;
      assert.deepEqual(policy.spec.ingress, [
        { from: [peer("monitoring")], ports: [{ port: healthPort, protocol: "TCP" }] },
      ]);
      assert.deepEqual(
        policy.spec.egress!.map((e) => [e.to, e.ports!.map((p) => `${p.port}/${p.protocol}`)]),
        [
          [
            [{ ipBlock: { cidr: "10.0.0.1/32" } }, { ipBlock: { cidr: "192.168.10.0/24" } }],
            ["443/TCP", "6443/TCP"],
          ],
          [
            [
              {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
                podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
              },
            ],
            ["53/UDP", "53/TCP"],
          ],
          [[peer("monitoring", "prometheus")], ["9090/TCP"]],
        ],
      );
    });

    const operatorPolicy = async (args: string[]) =>
      docsOf(
        ok(
          await template([
            "--set",
            "networkPolicy.operator.enabled=true",
            "--set",
            "networkPolicy.operator.apiServer.cidrs={10.0.0.1/32}",
            "--set",
            "networkPolicy.operator.prometheus.to[0].podSelector.matchLabels.app=prometheus",
            ...args,
          ]),
          "helm template",
        ),
      ).find((d) => d.kind === "NetworkPolicy") as Policy;

    for (const [url, extra, port] of [
      ["https://prometheus.example.com:8443/prom", [], 8443],
      ["http://prometheus.monitoring.svc", [], 80],
      ["https://prometheus.example.com", [], 443],
      ["http://prometheus.monitoring.svc", ["--set", "networkPolicy.operator.prometheus.port=9090"], 9090],
    ] as const) {
      it(`opens Prometheus' port ${port} for prometheus.url=${url}${extra.length ? " and an explicit port" : ""}`, async () => {
        const policy = await operatorPolicy(["--set", `prometheus.url=${url}`, ...extra]);
        assert.deepEqual(policy.spec.egress!.at(-1)!.ports, [{ port, protocol: "TCP" }]);
      });
    }

    it("has no Prometheus rule without prometheus.url, and no ingress without metricsFrom", async () => {
      const policy = await operatorPolicy([]);
      assert.equal(policy.spec.egress!.length, 2);
      assert.deepEqual(policy.spec.ingress, []);
    });

    for (const bad of [
      {
        set: ["networkPolicy.serving.enabled=true"],
        says: /networkPolicy\.serving\.enabled needs networkPolicy\.serving\.namespaces \(or watchNamespaces\)/,
      },
      { set: ["networkPolicy.operator.enabled=true"], says: /needs networkPolicy\.operator\.apiServer\.cidrs/ },
      {
        set: [
          "networkPolicy.operator.enabled=true",
          "networkPolicy.operator.apiServer.cidrs={10.0.0.1/32}",
          "prometheus.url=http://prometheus:9090",
        ],
        says: /with prometheus\.url needs networkPolicy\.operator\.prometheus\.to/,
      },
    ]) {
      it(`refuses ${bad.set.join(" ")} with a message saying what is missing`, async () => {
        const r = await template(bad.set.flatMap((s) => ["--set", s]));
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, bad.says);
      });
    }
  });

  it("ships the generated Grafana dashboard as a ConfigMap for the dashboard sidecar, in the namespace asked for", async () => {
    const docs = docsOf(
      ok(await template(["-f", valuesFile, ...monitoringApis.flatMap((a) => ["--api-versions", a])]), "helm template"),
    );
    const cm = docs.find((d) => d.kind === "ConfigMap") as Doc & { data: Record<string, string> };
    assert.equal(cm.metadata.namespace, dashboardNs);
    assert.equal(cm.metadata.labels?.grafana_dashboard, "1");
    assert.deepEqual(
      JSON.parse(cm.data["maas.json"]!),
      JSON.parse(readFileSync(join(repoRoot, generatedDashboardFile), "utf8")),
    );
  });
});
