// The maas-operator chart against the real test bed: lint, schema, server-side validation of every rendered
// object, admission under the restricted Pod Security profile, the RBAC it grants, and the real operator
// running with the chart's arguments and its ServiceAccount's token. The operator image cannot run on kwok
// nodes (kwok only marks pods Running), so "the pod was admitted" is what installing can show; the operator
// process itself is run locally with the identity the chart gives it.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ApiextensionsV1Api, type V1Deployment } from "@kubernetes/client-node";
import { CRD_NAME } from "../../../operator/src/api/index.ts";
import { clusterRules, leaderElectionRules } from "../../../operator/src/rbac.ts";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { PortNames } from "../../../serving-image/src/contract.ts";
import { useTestbed, type ExecResult, type Testbed } from "../../testbed/index.ts";
import { readVersions, repoRoot } from "../../testbed/paths.ts";
import { spawnOperator } from "../../testbed/operator.ts";
import { logTail } from "../../testbed/proc.ts";

const chartDir = join(repoRoot, "charts", "maas-operator");
const release = "maas-operator";

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

function docsOf(manifest: string): Doc[] {
  return parseAllDocuments(manifest)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null);
}

function ok(r: ExecResult, what: string): string {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `kubectl auth can-i` as a ServiceAccount; true only on an explicit "yes". */
async function canI(tb: Testbed, sa: string, verb: string, resource: string, scope: string[]): Promise<boolean> {
  const r = await tb.kubectl(["auth", "can-i", verb, resource, `--as=${sa}`, ...scope]);
  if (r.code !== 0 && r.stdout.trim() !== "no") throw new Error(`kubectl auth can-i failed: ${r.stderr}`);
  return r.code === 0 && r.stdout.trim() === "yes";
}

/** Every (verb, resource argument) pair a rule list grants, in kubectl's resource.group[/subresource] form. */
function grants(rules: typeof clusterRules): { verb: string; resource: string; args: string[] }[] {
  return rules.flatMap((rule) =>
    rule.apiGroups.flatMap((group) =>
      rule.resources.flatMap((res) =>
        rule.verbs.map((verb) => {
          const [base, sub] = res.split("/");
          const resource = group === "" ? base! : `${base!}.${group}`;
          return { verb, resource: sub ? `${resource}/${sub}` : resource, args: sub ? [`--subresource=${sub}`] : [] };
        }),
      ),
    ),
  );
}

describe("the maas-operator Helm chart on the test bed", function () {
  this.timeout(120_000);
  let tb: Testbed;
  const kubeVersion = readVersions().KUBERNETES_VERSION!;

  // The test bed's helm is built without version ldflags and would assume Kubernetes v1.20 offline.
  const template = (ns: string, args: string[] = []) =>
    tb.helm(["template", release, chartDir, "--namespace", ns, "--kube-version", kubeVersion, ...args]);

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full");
  });

  it("passes helm lint --strict", async () => {
    const out = ok(await tb.helm(["lint", "--strict", chartDir]), "helm lint --strict");
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  const badValues = [
    { set: "replicaCount=2", names: /additional properties 'replicaCount' not allowed/ },
    { set: "image.tagg=latest", names: /at '\/image': additional properties 'tagg' not allowed/ },
    { set: "replicas=two", names: /at '\/replicas': got string, want integer/ },
    { set: "serviceMonitor.enabled=yes", names: /at '\/serviceMonitor\/enabled': got string, want boolean/ },
    { set: "logLevel=verbose", names: /at '\/logLevel'/ },
    { set: "watchNamespaces={Team_A}", names: /at '\/watchNamespaces\/0'/ },
    { set: "prometheus.url=prometheus:9090", names: /at '\/prometheus\/url'/ },
    { set: "autoscaler.intervalSeconds=0", names: /at '\/autoscaler\/intervalSeconds'/ },
    { set: "nodeOptions=max-semi-space-size=2", names: /at '\/nodeOptions'/ },
  ];
  for (const bad of badValues) {
    it(`refuses --set ${bad.set} with a message naming the value (values.schema.json)`, async () => {
      const r = await template("maas-system", ["--set", bad.set]);
      assert.notEqual(r.code, 0, `helm template accepted --set ${bad.set}`);
      assert.match(r.stderr, bad.names);
    });
  }

  describe("rendered manifests, validated by the API server (server-side dry run)", () => {
    let releaseNs: string;
    let watched: string[];

    before(async () => {
      releaseNs = await tb.createNamespace("chart-dry");
      watched = [await tb.createNamespace("chart-dry-a"), await tb.createNamespace("chart-dry-b")];
      // CRDs first, as Helm installs crds/ before the templates. The file is the same generated CRD other
      // suites apply, so applying it again changes nothing.
      ok(await tb.kubectl(["apply", "-f", join(chartDir, "crds")]), "kubectl apply of the chart's crds/");
      // Polled rather than `kubectl wait`, which fails outright while a new CRD has no status.conditions yet.
      const apiext = tb.kc.makeApiClient(ApiextensionsV1Api);
      await tb.waitFor(`${CRD_NAME} Established`, async () => {
        const crd = await apiext.readCustomResourceDefinition({ name: CRD_NAME });
        return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
      });
    });

    const cases = [
      { name: "default values", args: () => [], kinds: ["ClusterRole", "ClusterRoleBinding"] },
      {
        name: "watchNamespaces set",
        args: () => ["--set", `watchNamespaces={${watched.join(",")}}`, "--set", "replicas=1"],
        kinds: ["Role", "RoleBinding"],
      },
    ];
    for (const c of cases) {
      it(`accepts every object rendered with ${c.name}`, async () => {
        const manifest = ok(await template(releaseNs, c.args()), "helm template");
        const docs = docsOf(manifest);
        for (const kind of [...c.kinds, "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"]) {
          assert.ok(
            docs.some((d) => d.kind === kind),
            `a ${kind} is rendered`,
          );
        }
        const out = ok(
          await tb.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: manifest }),
          "kubectl apply --dry-run=server",
        );
        const accepted = out.split("\n").filter((l) => l.includes("(server dry run)"));
        assert.equal(accepted.length, docs.length, `every object is accepted:\n${out}`);
      });
    }

    it("renders a PodMonitor for the serving pods only when enabled, selecting what the operator labels them with", async () => {
      const refused = await template(releaseNs, ["--set", "podMonitor.enabled=true"]);
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        /podMonitor\.enabled is true but the cluster has no monitoring\.coreos\.com\/v1 PodMonitor/,
      );
      const on = docsOf(
        ok(
          await template(releaseNs, [
            "--set",
            "podMonitor.enabled=true",
            "--api-versions",
            "monitoring.coreos.com/v1/PodMonitor",
          ]),
          "helm template with a PodMonitor",
        ),
      );
      const monitor = on.find((d) => d.kind === "PodMonitor") as
        | (Doc & {
            spec: {
              selector: { matchLabels: Record<string, string> };
              podMetricsEndpoints: { port: string; interval: string }[];
            };
          })
        | undefined;
      assert.ok(monitor, "a PodMonitor is rendered");
      // The labels and port name the operator gives every serving pod.
      const pod = desiredDeployment(
        {
          apiVersion: "maas.dev/v1alpha1",
          kind: "ModelDeployment",
          metadata: { name: "m", namespace: "ml", uid: "u" },
          spec: { model: { uri: "https://x/model.json" } },
        },
        { servingImage: "x" },
      ).spec!.template;
      for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
        assert.equal(pod.metadata!.labels![k], v, `serving pods carry ${k}=${v}`);
      }
      const ports = pod.spec!.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      assert.deepEqual(
        monitor.spec.podMetricsEndpoints.map((e) => [e.port, e.interval]),
        [[PortNames.metrics, "1s"]],
      );
      assert.ok(ports.includes(PortNames.metrics));
    });

    /** The operator container of the chart's Deployment, rendered with `args`. */
    const operatorContainer = async (args: string[]) => {
      const docs = docsOf(ok(await template(releaseNs, args), "helm template"));
      const deployment = docs.find((d) => d.kind === "Deployment") as Doc & {
        spec: { template: { spec: { containers: { args: string[]; env: { name: string; value?: string }[] }[] } } };
      };
      return deployment.spec.template.spec.containers[0]!;
    };

    it("passes the Prometheus address and the autoscaler's settings to the operator", async () => {
      const { args } = await operatorContainer(["--set", "prometheus.url=http://prometheus.monitoring.svc:9090"]);
      for (const flag of [
        "--prometheus-url=http://prometheus.monitoring.svc:9090",
        "--prometheus-timeout-seconds=5",
        "--prometheus-scrape-interval-seconds=1",
        "--autoscaler-interval-seconds=2",
        "--autoscaler-concurrency=8",
      ]) {
        assert.ok(args.includes(flag), `${flag} in ${args.join(" ")}`);
      }
    });

    it("gives the operator NODE_OPTIONS from nodeOptions (a small young generation by default), and none when empty", async () => {
      const nodeOptionsOf = async (args: string[]): Promise<string | undefined> =>
        (await operatorContainer(args)).env.find((e) => e.name === "NODE_OPTIONS")?.value;
      assert.equal(await nodeOptionsOf([]), "--max-semi-space-size=2");
      assert.equal(
        await nodeOptionsOf(["--set", "nodeOptions=--max-semi-space-size=4 --max-old-space-size=256"]),
        "--max-semi-space-size=4 --max-old-space-size=256",
      );
      assert.equal(await nodeOptionsOf(["--set", "nodeOptions="]), undefined);
    });

    it("renders a ServiceMonitor for the metrics Service only when enabled, and refuses without its CRD", async () => {
      const off = docsOf(ok(await template(releaseNs), "helm template"));
      assert.ok(!off.some((d) => d.kind === "ServiceMonitor"), "no ServiceMonitor by default");
      const refused = await template(releaseNs, ["--set", "serviceMonitor.enabled=true"]);
      assert.notEqual(refused.code, 0);
      assert.match(
        refused.stderr,
        /serviceMonitor\.enabled is true but the cluster has no monitoring\.coreos\.com\/v1/,
      );
      const on = docsOf(
        ok(
          await template(releaseNs, [
            "--set",
            "serviceMonitor.enabled=true",
            "--api-versions",
            "monitoring.coreos.com/v1/ServiceMonitor",
          ]),
          "helm template with a ServiceMonitor",
        ),
      );
      const monitor = on.find((d) => d.kind === "ServiceMonitor") as
        | (Doc & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] } })
        | undefined;
      assert.equal(monitor?.apiVersion, "monitoring.coreos.com/v1");
      const service = on.find((d) => d.kind === "Service") as Doc & { spec: { ports: { name: string }[] } };
      for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) {
        assert.equal(service.metadata.labels?.[k], v, `the metrics Service carries ${k}=${v}`);
      }
      assert.deepEqual(
        monitor.spec.endpoints.map((e) => e.port),
        service.spec.ports.map((p) => p.name),
      );
    });
  });

  describe("installed with helm into a namespace enforcing the restricted Pod Security profile", () => {
    let ns: string;
    let sa: string;
    let crdUid: string | undefined;
    let installOutput = "";

    before(async () => {
      ns = await tb.createNamespace("chart-restricted", {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
      });
      sa = `system:serviceaccount:${ns}:${release}`;
      installOutput = ok(await tb.helm(["install", release, chartDir, "--namespace", ns]), "helm install");
      crdUid = (await tb.kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME })).metadata
        ?.uid;
    });

    it("prints NOTES that name the release's Deployment, Lease and watched namespaces", () => {
      assert.ok(installOutput.includes(`kubectl -n ${ns} rollout status deployment/${release}`), installOutput);
      assert.ok(installOutput.includes(`kubectl -n ${ns} get lease ${release} `), installOutput);
      assert.match(installOutput, /Watching: all namespaces/);
    });

    it("rejects a pod that breaks the profile in that namespace, so the admission below is a real check", async () => {
      const pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "no-security-context", namespace: ns },
        spec: { containers: [{ name: "c", image: "busybox" }] },
      };
      const r = await tb.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: JSON.stringify(pod) });
      assert.notEqual(r.code, 0, "a pod without a security context was admitted");
      assert.match(r.stderr, /violates PodSecurity "restricted:latest"/);
    });

    it("has its ReplicaSet create every replica's pod: the pod template passes the restricted profile", async () => {
      const deployment: V1Deployment = await tb.apps.readNamespacedDeployment({ namespace: ns, name: release });
      const replicas = deployment.spec?.replicas ?? 0;
      assert.equal(replicas, 2);
      const selector = Object.entries(deployment.spec?.selector.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const pods = await tb.waitFor(
        `${replicas} operator pods in ${ns}`,
        async () => {
          const sets = await tb.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: selector });
          const failure = sets.items
            .flatMap((s) => s.status?.conditions ?? [])
            .find((c) => c.type === "ReplicaFailure" && c.status === "True");
          if (failure) throw new Error(`the ReplicaSet could not create pods: ${failure.message ?? failure.reason}`);
          const list = await tb.core.listNamespacedPod({ namespace: ns, labelSelector: selector });
          return list.items.length === replicas ? list.items : undefined;
        },
        30_000,
      );
      for (const pod of pods) {
        assert.equal(pod.spec?.serviceAccountName, release);
        assert.equal(pod.spec?.securityContext?.runAsUser, 65532);
      }
    });

    it("lets its ServiceAccount do everything clusterRules declares, in every namespace", async () => {
      const results = await Promise.all(
        grants(clusterRules).map(async (g) => ({
          ...g,
          yes: await canI(tb, sa, g.verb, g.resource, [...g.args, "-A"]),
        })),
      );
      assert.deepEqual(
        results.filter((r) => !r.yes).map((r) => `${r.verb} ${r.resource}`),
        [],
      );
    });

    it("lets its ServiceAccount hold the leader election Lease in the release namespace only", async () => {
      for (const g of grants(leaderElectionRules)) {
        assert.ok(await canI(tb, sa, g.verb, g.resource, ["-n", ns]), `${g.verb} ${g.resource} in ${ns}`);
        assert.ok(!(await canI(tb, sa, g.verb, g.resource, ["-n", "default"])), `${g.verb} ${g.resource} in default`);
      }
    });

    const denied = [
      { verb: "get", resource: "secrets" },
      { verb: "list", resource: "secrets" },
      { verb: "update", resource: "modeldeployments.maas.dev" },
      { verb: "patch", resource: "modeldeployments.maas.dev" },
      { verb: "delete", resource: "deployments.apps" },
      { verb: "update", resource: "deployments.apps" },
      { verb: "delete", resource: "pods" },
      { verb: "create", resource: "clusterroles.rbac.authorization.k8s.io" },
    ];
    for (const d of denied) {
      it(`does not let its ServiceAccount ${d.verb} ${d.resource}`, async () => {
        assert.equal(await canI(tb, sa, d.verb, d.resource, ["-A"]), false);
      });
    }

    it("keeps the CRD out of the release, so helm uninstall leaves it and every ModelDeployment in place", async () => {
      // Helm installs crds/ once and never tracks, upgrades or deletes them: the release manifest (what
      // uninstall deletes) has no CRD. The CRD may predate this install (other suites apply it), so the
      // check is on the manifest and on the CRD surviving uninstall with the same uid.
      const manifest = ok(await tb.helm(["get", "manifest", release, "--namespace", ns]), "helm get manifest");
      const kinds = docsOf(manifest).map((d) => d.kind);
      assert.ok(kinds.includes("Deployment"));
      assert.ok(!kinds.includes("CustomResourceDefinition"), "the CRD is not part of the release");
      ok(await tb.helm(["uninstall", release, "--namespace", ns, "--wait", "--timeout=60s"]), "helm uninstall");
      const crd = await tb.kc.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: CRD_NAME });
      assert.equal(crd.metadata?.uid, crdUid, "the same CRD object survives");
      assert.equal(crd.metadata?.deletionTimestamp, undefined);
      const gone = await tb.kubectl(["get", "deployment", release, "--namespace", ns]);
      assert.notEqual(gone.code, 0, "the Deployment is removed");
      const role = await tb.kubectl(["get", "clusterrole", `${release}-${ns}`]);
      assert.match(role.stderr, /NotFound/, "the ClusterRole is removed");
    });
  });

  describe("installed with helm for a list of watched namespaces", () => {
    let ns: string;
    let watchedNs: string;
    let otherNs: string;
    let sa: string;
    let installOutput = "";

    before(async () => {
      ns = await tb.createNamespace("chart-scoped");
      watchedNs = await tb.createNamespace("chart-watched");
      otherNs = await tb.createNamespace("chart-unwatched");
      sa = `system:serviceaccount:${ns}:${release}`;
      installOutput = ok(
        await tb.helm([
          "install",
          release,
          chartDir,
          "--namespace",
          ns,
          "--set",
          `watchNamespaces={${watchedNs}}`,
          "--set",
          "replicas=1",
        ]),
        "helm install",
      );
    });

    after(async () => {
      ok(await tb.helm(["uninstall", release, "--namespace", ns]), "helm uninstall");
    });

    it("prints NOTES that say which namespace is watched and deploy the example there", () => {
      assert.ok(installOutput.includes(`Watching: ${watchedNs}`), installOutput);
      assert.ok(installOutput.includes(`kubectl -n ${watchedNs} apply -f -`), installOutput);
    });

    it("grants clusterRules in the watched namespace, and neither in another namespace nor cluster-wide", async () => {
      const checks = grants(clusterRules).flatMap((g) => [
        { what: `${g.verb} ${g.resource} in ${watchedNs}`, want: true, scope: [...g.args, "-n", watchedNs], g },
        { what: `${g.verb} ${g.resource} in ${otherNs}`, want: false, scope: [...g.args, "-n", otherNs], g },
        { what: `${g.verb} ${g.resource} cluster-wide`, want: false, scope: [...g.args, "-A"], g },
      ]);
      const results = await Promise.all(
        checks.map(async (c) => ({ ...c, got: await canI(tb, sa, c.g.verb, c.g.resource, c.scope) })),
      );
      assert.deepEqual(
        results.filter((r) => r.got !== r.want).map((r) => `${r.want ? "denied" : "allowed"}: ${r.what}`),
        [],
      );
    });

    it("runs the real operator with the chart's arguments and its ServiceAccount's token: it becomes ready and leads", async () => {
      const deployment = await tb.apps.readNamespacedDeployment({ namespace: ns, name: release });
      const container = deployment.spec!.template.spec!.containers[0]!;
      const token = ok(
        await tb.kubectl(["create", "token", release, "--namespace", ns, "--duration=10m"]),
        "kubectl create token",
      ).trim();
      // What the pod's mounted token gives it in a cluster: the ServiceAccount's identity, nothing more.
      const cluster = tb.kc.getCurrentCluster()!;
      const kubeconfig = join(tb.runDir, `chart-sa-${ns}.kubeconfig`);
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [
            {
              name: "testbed",
              cluster: {
                server: cluster.server,
                ...(cluster.caFile ? { "certificate-authority": cluster.caFile } : {}),
                ...(cluster.caData ? { "certificate-authority-data": cluster.caData } : {}),
              },
            },
          ],
          users: [{ name: "sa", user: { token } }],
          contexts: [{ name: "sa", context: { cluster: "testbed", user: "sa" } }],
          "current-context": "sa",
        }),
      );
      // The chart's own arguments; only the health port moves to a free local port.
      const args = (container.args ?? []).filter((a) => !a.startsWith("--health-port="));
      assert.ok(args.includes(`--namespaces=${watchedNs}`), `the chart passes --namespaces: ${args.join(" ")}`);
      const op = await spawnOperator(tb, {
        user: sa,
        kubeconfig,
        name: "chart-operator",
        args,
        env: { POD_NAMESPACE: ns },
      });
      try {
        await tb.waitFor(
          "the operator's /readyz",
          async () => {
            try {
              return (await fetch(`http://127.0.0.1:${op.healthPort}/readyz`)).ok;
            } catch {
              return false;
            }
          },
          30_000,
        );
        const lease = await tb.waitFor(
          `the Lease ${release} in ${ns} held`,
          async () => {
            const l = await tb.coordination
              .readNamespacedLease({ namespace: ns, name: release })
              .catch(() => undefined);
            return l?.spec?.holderIdentity ? l : undefined;
          },
          30_000,
        );
        assert.ok(lease.spec?.holderIdentity);
        assert.doesNotMatch(logTail(op.logFile, 200), /forbidden/i, "no request was forbidden");
      } finally {
        await op.stop();
      }
      assert.equal(await op.exited, 0, `the operator exits cleanly on SIGTERM; log:\n${logTail(op.logFile)}`);
    });
  });
});
