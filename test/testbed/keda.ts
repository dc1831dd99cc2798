/**
 * KEDA on the test bed, as users run it beside their cluster's HPA: its operator and its metrics API
 * server as local processes (built from the Go module proxy by build.sh, cached by version), its
 * CRDs installed, and the metrics server registered through an APIService, so the real HPA
 * controller in the test bed's controller-manager scales what KEDA's ScaledObjects target.
 *
 * The aggregation layer reaches an APIService through its Service's endpoints, and endpoints may
 * not be loopback addresses: the metrics server listens on a second address of the loopback
 * interface (198.51.100.10, a documentation range), added for the run and removed after it; where
 * the sandbox forbids that, on the machine's first non-loopback address.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Cluster } from "./cluster.ts";
import type { Testbed } from "./index.ts";
import { cacheRoot, readVersions, testbedDir } from "./paths.ts";
import { issueServingCert } from "./pki.ts";
import { alive, freePort, waitUntil, type Proc } from "./proc.ts";

export const KEDA_NAMESPACE = "keda";
const ALIAS_IP = "198.51.100.10";
const METRICS_SERVICE = "keda-metrics-apiserver";

export interface Keda {
  operator: Proc;
  adapter: Proc;
  /** Address the metrics server listens on (for the APIService's endpoints). */
  address: string;
}

/** The KEDA binaries and CRDs, built first if missing (several minutes, once per version). */
export function ensureKeda(): { bin: string; crds: string; version: string } {
  const version = readVersions().KEDA_VERSION ?? "?";
  const root = cacheRoot();
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const bin = join(root, "bin");
  const crds = join(root, `keda-${version}`, "crds");
  const have = (name: string) => existsSync(join(bin, `${name}-${version}-linux-${arch}`));
  if (!have("keda-operator") || !have("keda-adapter") || !existsSync(crds)) {
    process.stderr.write(`[testbed] building KEDA ${version} (several minutes, once)\n`);
    const r = spawnSync("bash", [join(testbedDir, "build.sh"), "keda"], { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error(`building KEDA failed (exit ${r.status ?? r.signal}); see the output above`);
  }
  return { bin, crds, version };
}

/** A second loopback address for the aggregated API server, or the machine's own address. */
function aggregatedAddress(): { ip: string; added: boolean } {
  const present = Object.values(networkInterfaces())
    .flat()
    .some((a) => a?.address === ALIAS_IP);
  if (present) return { ip: ALIAS_IP, added: false };
  try {
    execFileSync("ip", ["addr", "add", `${ALIAS_IP}/32`, "dev", "lo"], { stdio: "pipe" });
    return { ip: ALIAS_IP, added: true };
  } catch {
    const own = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === "IPv4" && !a.internal);
    if (!own) throw new Error(`no address for KEDA's metrics server: cannot add ${ALIAS_IP} to lo, and no other IPv4`);
    return { ip: own.address, added: false };
  }
}

/** Removes the loopback alias `startKeda` added (nothing else). */
export function removeAlias(): void {
  spawnSync("ip", ["addr", "del", `${ALIAS_IP}/32`, "dev", "lo"], { stdio: "ignore" });
}

/**
 * Installs KEDA's CRDs and namespace, starts its operator and metrics server, registers the
 * external metrics API, and waits until the API server serves it.
 */
export async function startKeda(cluster: Cluster, tb: Testbed): Promise<Keda> {
  const { bin, crds } = ensureKeda();
  for (const file of readdirSync(crds).filter((f) => f.endsWith(".yaml"))) {
    const r = await tb.kubectl(["apply", "--server-side", "-f", join(crds, file)]);
    if (r.code !== 0) throw new Error(`installing KEDA's CRD ${file} failed: ${r.stderr}`);
  }
  await tb.kubectl(["create", "namespace", KEDA_NAMESPACE]);
  const { ip, added } = aggregatedAddress();
  if (added) cluster.onStop(removeAlias);
  // One certificate, from the test bed's CA, for both ends of KEDA's gRPC link and the metrics API.
  const dir = join(cluster.state.runDir, "keda");
  mkdirSync(dir, { recursive: true });
  const serving = issueServingCert(tb.pki, `${METRICS_SERVICE}.${KEDA_NAMESPACE}.svc`, ["127.0.0.1", ip]);
  copyFileSync(tb.pki.caCert, join(dir, "ca.crt"));
  copyFileSync(serving.cert, join(dir, "tls.crt"));
  copyFileSync(serving.key, join(dir, "tls.key"));
  const grpcPort = await freePort();
  const env = {
    ...process.env,
    KUBECONFIG: tb.kubeconfig,
    POD_NAMESPACE: KEDA_NAMESPACE,
    KEDA_CLUSTER_OBJECT_NAMESPACE: KEDA_NAMESPACE,
    WATCH_NAMESPACE: "",
  };
  const operator = cluster.runProcess(
    "keda-operator",
    join(bin, "keda-operator"),
    [
      `--metrics-bind-address=127.0.0.1:${await freePort()}`,
      `--health-probe-bind-address=127.0.0.1:${await freePort()}`,
      `--metrics-service-bind-address=127.0.0.1:${grpcPort}`,
      `--cert-dir=${dir}`,
      `--ca-dir=${dir}`,
      "--enable-cert-rotation=false",
      "--enable-webhook-patching=false",
      "--enable-apiservice-patching=false",
      "--leader-elect=false",
      "--zap-log-level=info",
    ],
    env,
  );
  const port = await freePort();
  const adapter = cluster.runProcess(
    "keda-adapter",
    join(bin, "keda-adapter"),
    [
      `--bind-address=${ip}`,
      `--secure-port=${port}`,
      `--tls-cert-file=${join(dir, "tls.crt")}`,
      `--tls-private-key-file=${join(dir, "tls.key")}`,
      `--cert-dir=${dir}`,
      `--lister-kubeconfig=${tb.kubeconfig}`,
      `--authentication-kubeconfig=${tb.kubeconfig}`,
      `--authorization-kubeconfig=${tb.kubeconfig}`,
      `--metrics-service-address=127.0.0.1:${grpcPort}`,
      "--v=2",
    ],
    env,
  );
  const manifest = [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: METRICS_SERVICE, namespace: KEDA_NAMESPACE },
      spec: { ports: [{ name: "https", port: 443, targetPort: port, protocol: "TCP" }] },
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${METRICS_SERVICE}-local`,
        namespace: KEDA_NAMESPACE,
        labels: { "kubernetes.io/service-name": METRICS_SERVICE },
      },
      addressType: "IPv4",
      endpoints: [{ addresses: [ip], conditions: { ready: true } }],
      ports: [{ name: "https", port, protocol: "TCP" }],
    },
    {
      apiVersion: "apiregistration.k8s.io/v1",
      kind: "APIService",
      metadata: { name: "v1beta1.external.metrics.k8s.io" },
      spec: {
        service: { name: METRICS_SERVICE, namespace: KEDA_NAMESPACE, port: 443 },
        group: "external.metrics.k8s.io",
        version: "v1beta1",
        caBundle: readFileSync(tb.pki.caCert).toString("base64"),
        groupPriorityMinimum: 100,
        versionPriority: 100,
      },
    },
  ];
  const applied = await tb.kubectl(["apply", "-f", "-"], {
    input: manifest.map((m) => JSON.stringify(m)).join("\n"),
  });
  if (applied.code !== 0) throw new Error(`registering KEDA's metrics API failed: ${applied.stderr}`);
  await waitUntil(
    "the external metrics API served through the aggregation layer",
    async () => {
      if (!alive(operator.pid)) throw new Error("keda-operator exited");
      const r = await tb.kubectl(["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"]);
      return r.code === 0 && r.stdout.includes("external.metrics.k8s.io");
    },
    120_000,
    adapter,
  );
  return { operator, adapter, address: `${ip}:${port}` };
}
