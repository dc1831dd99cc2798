// The CPU serving image as a container, run as the node agent runs the pod the operator renders: the
// operator's command, environment and security context (numeric non-root user, read-only root filesystem,
// no capabilities, no privilege escalation), its memory limit, and directories for its volumes. It fetches
// the pretrained liveness model, serves it on wasm with the predictions TF.js gives in-process, cannot
// write outside its volumes, and drains on SIGTERM.
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { V1PodSpec } from "@kubernetes/client-node";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { digestDirectory } from "../../../serving-image/src/fetch/digest.ts";
import { Env, Metrics, Paths } from "../../../serving-image/src/contract.ts";
import { podman } from "../../testbed/podman.ts";
import { freePort } from "../../testbed/proc.ts";
import { startModelStore, type ModelStore } from "../../testbed/model-store.ts";
import { assertClose, copyHumanModel, directModel, flatten, seededFloats, nest, tempDir } from "../serving/fixtures.ts";
import { builtImages, removeCheckContainers, runPodContainer, volume, type RunningContainer } from "./harness.ts";

const SERVING_UID = 65532;

describe("the CPU serving image, run as the pod the operator renders", function () {
  this.timeout(120_000);
  let image: string;
  let store: ModelStore;
  let pod: V1PodSpec;
  let volumes: Record<string, string>;
  let logDir: string;
  let modelDir: string;
  let serving: RunningContainer;
  let ports: { http: number; metrics: number };

  before(async function () {
    this.timeout(900_000);
    image = (await builtImages()).serving;
    const root = await tempDir("image-store");
    modelDir = await copyHumanModel("liveness", join(root, "liveness", "1"));
    store = await startModelStore(root);
    pod = desiredDeployment(
      {
        apiVersion: "maas.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "liveness", namespace: "images", uid: "u" },
        spec: {
          model: {
            uri: `${store.url}/liveness/1/model.json`,
            format: "tfjs-graph",
            sha256: await digestDirectory(modelDir),
            version: "1",
          },
          replicas: 1,
          serving: { backend: "wasm", workers: 1 },
        },
      },
      { servingImage: image },
    ).spec!.template.spec!;
    volumes = Object.fromEntries(
      await Promise.all((pod.volumes ?? []).map(async (v) => [v.name, await volume(`image-${v.name}`)] as const)),
    );
    logDir = await tempDir("image-logs");
    ports = { http: await freePort(), metrics: await freePort() };
  });

  after(async () => {
    await removeCheckContainers();
    await store.close();
  });

  it("runs as the numeric non-root user the pod asks for", async () => {
    const user = (await podman(["image", "inspect", "--format={{.Config.User}}", image])).trim();
    assert.equal(user, `${SERVING_UID}:${SERVING_UID}`);
    assert.equal(pod.securityContext?.runAsUser, SERVING_UID);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
  });

  it("fetches and verifies the model into its volume as the init container, with a read-only root filesystem", async () => {
    const fetch = pod.initContainers![0]!;
    assert.equal(fetch.securityContext?.readOnlyRootFilesystem, true);
    const c = runPodContainer(pod, fetch, image, { mounts: volumes, logDir });
    assert.equal(await c.exited, 0, `fetch failed: ${c.terminationMessage()}\n${c.log()}`);
    const fetched = join(volumes.models!, Paths.fetchedModelDir.slice(Paths.modelDir.length + 1));
    assert.deepEqual(readdirSync(fetched).sort(), ["liveness.bin", "model.json"]);
    for (const f of readdirSync(fetched))
      assert.equal(statSync(join(fetched, f)).uid, SERVING_UID, `${f} is the pod's`);
  });

  it("serves it through both protocols with the predictions TF.js makes in-process, on wasm", async () => {
    const serve = pod.containers[0]!;
    assert.equal(serve.securityContext?.readOnlyRootFilesystem, true);
    // Host network: the ports move to free ones, through the variables the image reads.
    serving = runPodContainer(pod, serve, image, {
      mounts: volumes,
      logDir,
      env: { [Env.httpPort]: String(ports.http), [Env.metricsPort]: String(ports.metrics) },
    });
    const url = `http://127.0.0.1:${ports.http}`;
    const deadline = Date.now() + 60_000;
    let exited: number | null | undefined;
    void serving.exited.then((code) => (exited = code));
    while ((await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status !== 200) {
      assert.equal(exited, undefined, `serve exited: ${serving.terminationMessage()}\n${serving.log()}`);
      assert.ok(Date.now() < deadline, `not ready in 60 s:\n${serving.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const direct = await directModel(modelDir);
    const input = seededFloats(7, 32 * 32 * 3);
    const expected = flatten(
      Object.values(await direct.predict({ conv2d_1_input: { data: input, shape: [1, 32, 32, 3] } }))[0]!.data,
    );
    const v1 = await fetch(`${url}/v1/models/liveness:predict`, {
      method: "POST",
      body: JSON.stringify({ instances: [nest(input, [32, 32, 3])] }),
    });
    assert.equal(v1.status, 200, await v1.clone().text());
    assertClose(flatten(((await v1.json()) as { predictions: unknown }).predictions), expected, 1e-4, "v1 predictions");
    const v2 = await fetch(`${url}/v2/models/liveness/infer`, {
      method: "POST",
      body: JSON.stringify({
        inputs: [{ name: "conv2d_1_input", shape: [1, 32, 32, 3], datatype: "FP32", data: input }],
      }),
    });
    assert.equal(v2.status, 200, await v2.clone().text());
    const out = ((await v2.json()) as { outputs: { shape: number[]; data: number[] }[] }).outputs[0]!;
    assert.deepEqual(out.shape, [1, 2]);
    assertClose(out.data, expected, 1e-4, "v2 outputs");
    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    assert.match(metrics, new RegExp(`${Metrics.backendInfo}\\{[^}]*backend="wasm"[^}]*\\} 1`));
  });

  it("cannot write its root filesystem: only the pod's volumes are writable", async () => {
    // /var/tmp is writable by every user on Debian: only the read-only root filesystem stops this write.
    const denied = await podman(["exec", serving.name, "sh", "-c", "echo x > /var/tmp/probe"]).then(
      () => "written",
      (err: unknown) => String(err),
    );
    assert.match(denied, /Read-only file system/);
    await podman(["exec", serving.name, "sh", "-c", `echo x > ${Paths.tmpDir}/probe`]);
    // podman itself bind-mounts /etc/hosts, /etc/resolv.conf and /etc/hostname, making their mount points
    // (a container that runs `true` shows "C /etc"); anything else is the image's own doing.
    const podmansOwn = /^(C \/etc|A \/etc\/(hosts|resolv\.conf|hostname))$/;
    const diff = (await podman(["diff", serving.name]))
      .split("\n")
      .filter((l) => l.trim() && !podmansOwn.test(l.trim()));
    assert.deepEqual(diff, [], "the container changed its root filesystem");
  });

  it("drains on SIGTERM: not ready at once, still answering during the shutdown delay, then exits 0", async () => {
    const url = `http://127.0.0.1:${ports.http}`;
    const delay = Number(pod.containers[0]!.env!.find((e) => e.name === Env.shutdownDelayMs)!.value);
    assert.ok(delay >= 1000, "the operator sets a shutdown delay");
    assert.ok(await serving.signal("SIGTERM"), "the container was running");
    // The signal reaches node (PID 1 through the entry point's exec) a moment after podman delivers it.
    const deadline = Date.now() + 10_000;
    let ready = 200;
    while (ready === 200 && Date.now() < deadline) ready = (await fetch(`${url}/v2/health/ready`)).status;
    assert.equal(ready, 503, "not ready once SIGTERM arrived");
    const during = await fetch(`${url}/v1/models/liveness:predict`, {
      method: "POST",
      body: JSON.stringify({ instances: [nest(seededFloats(8, 32 * 32 * 3), [32, 32, 3])] }),
    });
    assert.equal(during.status, 200, "still answering during the shutdown delay");
    assert.equal(await serving.exited, 0, serving.log());
    assert.match(serving.log(), /Drained and stopped/);
  });
});
