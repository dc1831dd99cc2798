// The operator image as a user's `helm install` runs it: the chart's Deployment, scheduled onto the test
// bed's local node, whose node agent starts the pod's container from the image with podman, with the
// chart's arguments, security context (non-root, read-only root filesystem, no capabilities), its /tmp
// volume and its ServiceAccount's projected token (in-cluster configuration, as in a real cluster).
// Image mode only (MAAS_TESTBED_IMAGES=1, `npm run test:images`): in source mode nothing could run it.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { IMAGES_ENV } from "../../testbed/images.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { localNodeName, localNodeTaint } from "../../testbed/nodes.ts";
import { servingImageFor, startOperator } from "../../testbed/operator.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { podman, RUN_LABEL } from "../../testbed/podman.ts";
import { freePort } from "../../testbed/proc.ts";
import { createMd, manifest, model, waitForCondition } from "../operator/helpers.ts";

const release = "maas-operator";
const chartDir = join(repoRoot, "charts", "maas-operator");

describe("the operator image, installed with the chart onto the local node", function () {
  this.timeout(180_000);
  let tb: Testbed;
  let ns: string;
  let watched: string;

  before(async function () {
    this.timeout(900_000);
    tb = await useTestbed("full");
    assert.ok(tb.images, `the test bed runs images only with ${IMAGES_ENV}=1 (npm run test:images)`);
    ns = await tb.createNamespace("image-operator", {
      "pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/enforce-version": "latest",
    });
    watched = await tb.createNamespace("image-watched");
  });

  async function operatorPod(): Promise<V1Pod | undefined> {
    const pods = await tb.core.listNamespacedPod({
      namespace: ns,
      labelSelector: `app.kubernetes.io/instance=${release}`,
    });
    return pods.items[0];
  }

  async function leaseHolder(): Promise<string> {
    const lease = await tb.coordination.readNamespacedLease({ namespace: ns, name: release }).catch(() => undefined);
    return lease?.spec?.holderIdentity ?? "";
  }

  it("becomes Ready and leads with its ServiceAccount's token, reconciles its namespace, and releases the lease when its pod is deleted", async () => {
    const image = tb.images!.operator;
    const colon = image.lastIndexOf(":");
    // On host networking the health port is the node's: a free one, so test beds side by side do not clash.
    const values = {
      image: { repository: image.slice(0, colon), tag: image.slice(colon + 1), pullPolicy: "Never" },
      replicas: 1,
      healthPort: await freePort(),
      watchNamespaces: [watched],
      servingImage: servingImageFor(tb),
      nodeSelector: { "kubernetes.io/hostname": localNodeName },
      tolerations: [{ key: localNodeTaint.key, operator: "Exists", effect: localNodeTaint.effect }],
    };
    const valuesFile = join(tb.runDir, `image-operator-values-${ns}.json`);
    writeFileSync(valuesFile, JSON.stringify(values));
    const install = await tb.helm(["install", release, chartDir, "--namespace", ns, "--values", valuesFile]);
    assert.equal(install.code, 0, install.stderr);

    const pod = await tb.waitFor(
      "the operator pod Ready",
      async () => {
        const p = await operatorPod();
        const waiting = p?.status?.containerStatuses?.[0]?.state?.waiting;
        if (waiting?.reason && !/ContainerCreating|PodInitializing/.test(waiting.reason)) {
          throw new Error(`${waiting.reason}: ${waiting.message ?? ""}`);
        }
        return p?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") && p;
      },
      90_000,
    );
    const status = pod.status!.containerStatuses![0]!;
    assert.equal(pod.spec!.nodeName, localNodeName);
    assert.match(status.containerID ?? "", /^podman:\/\//, "the node agent runs it from the image");
    assert.equal(status.image, image);
    const mounts = pod.spec!.containers[0]!.volumeMounts!.map((m) => m.mountPath);
    assert.ok(
      mounts.includes("/var/run/secrets/kubernetes.io/serviceaccount"),
      `the token is mounted: ${mounts.join(", ")}`,
    );
    assert.ok(!pod.spec!.containers[0]!.args!.some((a) => a.startsWith("--kubeconfig")), "in-cluster configuration");

    const holder = await tb.waitFor("the Lease held", async () => (await leaseHolder()) || undefined, 30_000);
    assert.ok(holder);
    await createMd(tb, watched, manifest("from-image", { model, replicas: 1 }));
    await waitForCondition(tb, watched, "from-image", "Ready", "True", 90_000);

    const podDir = readdirSync(join(tb.runDir, "node-agent", "pods")).find((d) => d.startsWith(`${ns}_`))!;
    const log = readFileSync(join(tb.runDir, "node-agent", "pods", podDir, "operator.log"), "utf8");
    assert.doesNotMatch(log, /forbidden|EROFS|read-only file system/i, "no request forbidden, no write refused");

    // Scaling to zero deletes the pod: the node agent sends SIGTERM to the container, the operator drains and
    // releases the lease. (Not helm uninstall: it deletes the Role with the Deployment, and the release is
    // then forbidden.)
    const scale = await tb.kubectl(["scale", "deployment", release, "--namespace", ns, "--replicas=0"]);
    assert.equal(scale.code, 0, scale.stderr);
    await tb.waitFor("the lease released", async () => (await leaseHolder()) === "", 30_000);
    await tb.waitFor("the operator pod gone", async () => (await operatorPod()) === undefined, 30_000);
    assert.match(
      readFileSync(join(tb.runDir, "node-agent", "pods", podDir, "operator.log"), "utf8"),
      /released the lease/,
    );
    const uninstall = await tb.helm(["uninstall", release, "--namespace", ns, "--wait", "--timeout=60s"]);
    assert.equal(uninstall.code, 0, uninstall.stderr);
  });

  it("runs the operators the other suites start from the image too", async () => {
    const op = await startOperator(tb, { name: "image-check", args: [`--namespaces=${watched}`] });
    try {
      const listed = await podman(["ps", `--filter=label=${RUN_LABEL}=${tb.runDir}`, "--format={{.Image}} {{.Names}}"]);
      assert.ok(
        listed.split("\n").some((l) => l.startsWith(`${tb.images!.operator} `) && l.includes("image-check")),
        listed,
      );
    } finally {
      assert.equal(await op.stop(), 0, op.logs());
    }
  });
});
