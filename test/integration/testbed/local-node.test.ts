import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { localNodeName, localNodeTaint } from "../../testbed/nodes.ts";
import { alive } from "../../testbed/proc.ts";

const onLocalNode = {
  nodeSelector: { "kubernetes.io/hostname": localNodeName },
  tolerations: [{ key: localNodeTaint.key, operator: "Exists" }],
};

describe("test bed local node agent", function () {
  let tb: Testbed;
  let ns: string;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("full", { prometheus: true });
    ns = await tb.createNamespace("local-node");
  });

  after(async function () {
    await tb.core.deleteNamespace({ name: ns });
  });

  async function pod(name: string): Promise<V1Pod> {
    return tb.core.readNamespacedPod({ namespace: ns, name });
  }

  it("makes a pod Ready through its readiness probe and serves on its port", async function () {
    await tb.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: {
          name: "web",
          labels: { app: "web", tier: "demo" },
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9090" },
        },
        spec: {
          ...onLocalNode,
          containers: [
            {
              name: "web",
              image: "testbed-http-server",
              env: [
                { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                { name: "READY_AFTER_MS", value: "1500" },
              ],
              ports: [
                { name: "http", containerPort: 8080 },
                { name: "metrics", containerPort: 9090 },
              ],
              readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const running = await tb.waitFor("web running", async () => (await pod("web")).status?.phase === "Running");
    assert.ok(running);
    const notYet = (await pod("web")).status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(notYet?.status, "False", "the pod was Ready before its readiness probe could pass");
    await tb.waitFor("web Ready", async () =>
      (await pod("web")).status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    const port = tb.podPort(ns, "web", 8080);
    assert.ok(port, "the agent published no port for web:8080");
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), "hello from web\n");
  });

  it("lets Prometheus scrape a process on the local node, queryable by the pod's labels", async function () {
    const url = `${tb.prometheusUrl!}/api/v1/query?query=${encodeURIComponent(`testbed_fixture_hits_total{namespace="${ns}",pod="web",tier="demo"}`)}`;
    // A scrape may land between the pod's start and the previous test's request: wait for one after it.
    const sample = await tb.waitFor(
      "a scraped sample that counts the previous test's request",
      async () => {
        const body = (await (await fetch(url)).json()) as { data: { result: { value: [number, string] }[] } };
        const s = body.data.result[0];
        return s && Number(s.value[1]) >= 1 && s;
      },
      30_000,
    );
    assert.equal(Number(sample.value[1]), 1, "the fixture counted exactly the previous test's request");
  });

  it("shows an init container's failure and termination message in pod status", async function () {
    await tb.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "bad-init" },
        spec: {
          ...onLocalNode,
          initContainers: [
            {
              name: "fetch",
              image: "testbed-fail",
              args: ["3", "model fetch failed: GET http://example.invalid/model.json returned 404"],
              env: [{ name: "TERMINATION_MESSAGE_PATH", value: "/dev/termination-log" }],
            },
          ],
          containers: [{ name: "web", image: "testbed-http-server" }],
        },
      },
    });
    const status = await tb.waitFor("the init failure", async () => {
      const s = (await pod("bad-init")).status?.initContainerStatuses?.[0];
      return (s?.lastState?.terminated ?? s?.state?.terminated) && s;
    });
    const terminated = status.lastState?.terminated ?? status.state?.terminated;
    assert.equal(terminated?.exitCode, 3);
    assert.equal(terminated?.message, "model fetch failed: GET http://example.invalid/model.json returned 404");
    const p = await pod("bad-init");
    assert.equal(p.status?.phase, "Pending");
    assert.equal(p.status?.conditions?.find((c) => c.type === "Initialized")?.status, "False");
  });

  it("sends SIGTERM on deletion and the process is gone afterwards", async function () {
    const marker = join(mkdtempSync(join(tmpdir(), "maas-sigterm-")), "got-sigterm");
    await tb.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "doomed" },
        spec: {
          ...onLocalNode,
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: "web",
              image: "testbed-http-server",
              env: [{ name: "SIGTERM_MARKER", value: marker }],
              ports: [{ containerPort: 8080 }],
              // Ready means listening, and the fixture installs its SIGTERM handler before it listens.
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const running = await tb.waitFor("doomed ready", async () => {
      const s = (await pod("doomed")).status?.containerStatuses?.[0];
      return s?.ready && s;
    });
    const pid = Number(running.containerID?.replace("testbed://", ""));
    assert.ok(alive(pid));
    await tb.core.deleteNamespacedPod({ namespace: ns, name: "doomed" });
    await tb.waitFor("the pod object to be gone", async () => {
      try {
        await pod("doomed");
        return false;
      } catch {
        return true;
      }
    });
    assert.ok(existsSync(marker), "the process did not receive SIGTERM");
    assert.equal(Number(readFileSync(marker, "utf8")), pid);
    assert.equal(alive(pid), false);
  });
});
