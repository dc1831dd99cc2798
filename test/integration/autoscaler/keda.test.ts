import assert from "node:assert/strict";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import { LoadGenerator } from "../../testbed/load.ts";
import {
  autoscaledSpec,
  halfLoad,
  halfPlusThreeStore,
  plainServingDeployment,
  prometheusScaledObject,
  seconds,
} from "./fixtures.ts";

// KEDA is the peer bench:autoscaler compares maas's autoscaler with. This shows the test bed runs
// it for real: KEDA's operator and metrics API server beside the control plane, the real HPA
// controller of the controller-manager acting on the external metric KEDA serves.
describe("test bed: KEDA's Prometheus scaler scales a plain Deployment of the serving image", function () {
  let tb: Testbed;
  let ns: string;
  const running: { stop(): unknown }[] = [];

  before(async function () {
    this.timeout(900_000);
    tb = await useTestbed("full", { prometheus: true });
    await tb.startKeda();
    ns = await tb.createNamespace("keda");
  });

  after(async function () {
    for (const r of running.splice(0)) await r.stop();
    await tb.core.deleteNamespace({ name: ns });
  });

  it("scales on request rate through a ScaledObject and the HPA it creates", async function () {
    this.timeout(300_000);
    const { store, uri } = await halfPlusThreeStore();
    running.push({ stop: () => store.close() });
    const name = "plain";
    const deployment = plainServingDeployment(
      ns,
      name,
      autoscaledSpec(uri, { metric: { type: "RequestsPerSecond", target: 5 } }),
    );
    await tb.apps.createNamespacedDeployment({ namespace: ns, body: deployment });
    await tb.waitFor(
      "the plain Deployment available",
      async () => (await tb.apps.readNamespacedDeployment({ namespace: ns, name })).status?.availableReplicas === 1,
      120_000,
    );
    // The same query maas's autoscaler runs for RequestsPerSecond over 30 s: the HPA asks for ceil(value / 5).
    const scaledObject = prometheusScaledObject(tb, ns, name, {
      windowSeconds: 30,
      target: 5,
      maxReplicas: 4,
      pollingInterval: 5,
    });
    const created = await tb.kubectl(["apply", "-f", "-"], { input: JSON.stringify(scaledObject) });
    assert.equal(created.code, 0, created.stderr);
    const gen: LoadGenerator = halfLoad(tb, ns, name, () => 13);
    running.push(gen);
    await gen.start();
    const started = Date.now();
    // 13 req/s against 5 per replica: the HPA asks for 3.
    await tb.waitFor(
      "the HPA to scale the Deployment to 3",
      async () => (await tb.apps.readNamespacedDeployment({ namespace: ns, name })).spec?.replicas === 3,
      180_000,
    );
    console.log(`      load → 3 replicas by KEDA and the HPA in ${seconds(Date.now() - started)} s`);
    const hpa = await tb.kubectl(["-n", ns, "get", "hpa", `keda-hpa-${name}`, "-o", "json"]);
    assert.equal(hpa.code, 0, hpa.stderr);
    const status = JSON.parse(hpa.stdout) as {
      status: { currentMetrics?: { type: string; external?: { current?: { averageValue?: string } } }[] };
    };
    const metric = status.status.currentMetrics?.find((m) => m.type === "External");
    assert.ok(metric?.external?.current?.averageValue, `the HPA reads KEDA's external metric: ${hpa.stdout}`);
  });
});
