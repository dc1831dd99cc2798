import assert from "node:assert/strict";
import { desiredDeployment, desiredReplicas, wholeCores } from "../../../operator/src/reconcile/desired-deployment.ts";
import { desiredService, endpointOf } from "../../../operator/src/reconcile/desired-service.ts";
import { CredentialKeys, Env, Paths } from "../../../serving-image/src/contract.ts";
import { md } from "./fixtures.ts";

const settings = { servingImage: "ghcr.io/maas-dev/maas-serving:0.1.0" };

function envOf(c: { env?: { name: string; value?: string }[] } | undefined): Record<string, string | undefined> {
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value]));
}

describe("desiredDeployment", function () {
  it("is deterministic, so applying it twice changes nothing", function () {
    const m = md({ resources: { gpu: { count: 1, product: "NVIDIA-A10G" } } });
    assert.deepEqual(desiredDeployment(m, settings), desiredDeployment(m, settings));
  });

  it("requests GPUs, tolerates the GPU taint and selects the product when a GPU is asked for", function () {
    const d = desiredDeployment(md({ resources: { gpu: { count: 2, product: "NVIDIA-H100-80GB-HBM3" } } }), settings);
    const pod = d.spec!.template.spec!;
    assert.equal(pod.containers[0]!.resources!.limits!["nvidia.com/gpu"], "2");
    assert.deepEqual(pod.nodeSelector, { "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3" });
    assert.ok(
      pod.tolerations!.some((t) => t.key === "nvidia.com/gpu" && t.operator === "Exists" && t.effect === "NoSchedule"),
    );
    assert.deepEqual(d.spec!.strategy!.rollingUpdate, { maxSurge: 0, maxUnavailable: 1 });
  });

  it("neither requests GPUs nor tolerates their taint for a CPU model", function () {
    const pod = desiredDeployment(md(), settings).spec!.template.spec!;
    assert.equal(pod.containers[0]!.resources!.limits!["nvidia.com/gpu"], undefined);
    assert.equal(pod.tolerations, undefined);
    assert.equal(pod.nodeSelector, undefined);
  });

  it("keeps the user's scheduling fields next to its own", function () {
    const pod = desiredDeployment(
      md({
        resources: { gpu: { count: 1, product: "NVIDIA-A10G" } },
        scheduling: {
          nodeSelector: { zone: "a" },
          tolerations: [{ key: "spot", operator: "Exists" }],
          priorityClassName: "inference",
          affinity: { nodeAffinity: {} },
        },
      }),
      settings,
    ).spec!.template.spec!;
    assert.deepEqual(pod.nodeSelector, { zone: "a", "nvidia.com/gpu.product": "NVIDIA-A10G" });
    assert.equal(pod.tolerations!.length, 2);
    assert.equal(pod.priorityClassName, "inference");
    assert.deepEqual(pod.affinity, { nodeAffinity: {} });
  });

  it("meets the restricted Pod Security profile in every container", function () {
    const pod = desiredDeployment(md(), settings).spec!.template.spec!;
    assert.equal(pod.securityContext!.runAsNonRoot, true);
    assert.equal(pod.securityContext!.seccompProfile!.type, "RuntimeDefault");
    assert.equal(pod.automountServiceAccountToken, false);
    for (const c of [...pod.initContainers!, ...pod.containers]) {
      assert.equal(c.securityContext!.allowPrivilegeEscalation, false, c.name);
      assert.equal(c.securityContext!.readOnlyRootFilesystem, true, c.name);
      assert.deepEqual(c.securityContext!.capabilities!.drop, ["ALL"], c.name);
    }
    assert.ok(
      pod.volumes!.every((v) => v.emptyDir || v.persistentVolumeClaim),
      "only restricted-profile volume types",
    );
  });

  it("passes credentials as Secret references, never as values", function () {
    const pod = desiredDeployment(
      md({
        model: {
          uri: "s3://bucket/sentiment/model.json",
          format: "tfjs-graph",
          credentialsSecretRef: { name: "store" },
        },
      }),
      settings,
    ).spec!.template.spec!;
    const fetch = pod.initContainers![0]!;
    const creds = fetch.env!.filter((e) => e.name.startsWith("AWS_") || e.name === Env.httpAuthorization);
    assert.ok(creds.length >= 3);
    const sessionToken = creds.find((e) => e.name === Env.awsSessionToken);
    assert.equal(
      sessionToken?.valueFrom?.secretKeyRef?.key,
      CredentialKeys.awsSessionToken,
      "STS keys need their token",
    );
    for (const e of creds) {
      assert.equal(e.value, undefined);
      assert.equal(e.valueFrom!.secretKeyRef!.name, "store");
    }
    // An S3 request cannot be signed without the key pair: those are required, so a missing Secret
    // or key stops the pod with the kubelet's words instead of a fetch that fails for want of them.
    assert.deepEqual(
      creds.filter((e) => e.valueFrom!.secretKeyRef!.optional === false).map((e) => e.valueFrom!.secretKeyRef!.key),
      [CredentialKeys.awsAccessKeyId, CredentialKeys.awsSecretAccessKey],
    );
    assert.equal(
      pod.containers[0]!.env!.some((e) => e.valueFrom?.secretKeyRef),
      false,
      "the serving container gets no credentials",
    );
  });

  it("mounts the claim of a pvc:// model read-only in the fetch container only", function () {
    const pod = desiredDeployment(
      md({ model: { uri: "pvc://models/sentiment/model.json", format: "tfjs-graph" } }),
      settings,
    ).spec!.template.spec!;
    assert.deepEqual(pod.volumes!.find((v) => v.persistentVolumeClaim)?.persistentVolumeClaim, {
      claimName: "models",
      readOnly: true,
    });
    const fetch = pod.initContainers![0]!;
    assert.ok(fetch.volumeMounts!.some((m) => m.mountPath === Paths.modelSourceDir && m.readOnly === true));
    assert.equal(envOf(fetch)[Env.modelSourceDir], Paths.modelSourceDir);
    assert.ok(!pod.containers[0]!.volumeMounts!.some((m) => m.mountPath === Paths.modelSourceDir));
  });

  it("tells both containers the same model directory, and the server its name and version", function () {
    const pod = desiredDeployment(
      md({ model: { uri: "https://h/m/model.json", servedName: "sent", version: "3" } }),
      settings,
    ).spec!.template.spec!;
    const fetch = envOf(pod.initContainers![0]);
    const serve = envOf(pod.containers[0]);
    assert.equal(fetch[Env.modelDir], serve[Env.modelDir]);
    assert.equal(serve[Env.servedName], "sent");
    assert.equal(serve[Env.modelVersion], "3");
    assert.equal(serve[Env.deploymentName], "sentiment");
    assert.equal(serve[Env.deploymentNamespace], "ml");
  });

  it("has both containers leave their failure reason where the kubelet reads it", function () {
    const pod = desiredDeployment(md({}), settings).spec!.template.spec!;
    for (const c of [pod.initContainers![0]!, pod.containers[0]!]) {
      assert.equal(envOf(c)[Env.terminationMessagePath], c.terminationMessagePath, c.name);
    }
    assert.equal(
      envOf(pod.containers[0])[Env.exitOnLoadFailure],
      "true",
      "serve exits with the reason on a load failure",
    );
  });

  it("tells the server the cores its pod requested, rounded up, so it does not size itself by the node", function () {
    const serve = (cpu?: string): string | undefined =>
      envOf(
        desiredDeployment(md(cpu === undefined ? {} : { resources: { cpu } }), settings).spec!.template.spec!
          .containers[0],
      )[Env.cpus];
    assert.equal(serve(), "1", "the default request of 1 CPU");
    assert.equal(serve("250m"), "1");
    assert.equal(serve("2"), "2");
    assert.equal(serve("2500m"), "3");
    assert.equal(serve("16"), "16");
  });

  it("uses spec.image over the operator's default image", function () {
    const pod = desiredDeployment(md({ image: "registry.local/maas-serving:dev" }), settings).spec!.template.spec!;
    assert.equal(pod.containers[0]!.image, "registry.local/maas-serving:dev");
    assert.equal(pod.initContainers![0]!.image, "registry.local/maas-serving:dev");
  });
});

describe("wholeCores", function () {
  it("rounds a CPU quantity up to whole cores, at least one", function () {
    assert.equal(wholeCores("1m"), 1);
    assert.equal(wholeCores("1"), 1);
    assert.equal(wholeCores("1001m"), 2);
    assert.equal(wholeCores("1.5"), 2);
    assert.equal(wholeCores("64"), 64);
    assert.equal(wholeCores("0"), 1);
    assert.equal(wholeCores("1e3"), 1000);
    assert.equal(wholeCores("1e30"), Number.MAX_SAFE_INTEGER);
  });
});

describe("desiredReplicas", function () {
  const table: { name: string; spec: Parameters<typeof md>[0]; status?: number; want: number }[] = [
    { name: "defaults to 1", spec: {}, want: 1 },
    { name: "follows spec.replicas", spec: { replicas: 4 }, want: 4 },
    { name: "allows zero", spec: { replicas: 0 }, want: 0 },
    {
      name: "starts an autoscaled model at minReplicas",
      spec: { autoscaling: { minReplicas: 2, maxReplicas: 5, metric: { target: 1 } } },
      want: 2,
    },
    {
      name: "follows the autoscaler's decision",
      spec: { autoscaling: { minReplicas: 1, maxReplicas: 5, metric: { target: 1 } } },
      status: 3,
      want: 3,
    },
    {
      name: "clamps a stale decision to a lowered max",
      spec: { autoscaling: { minReplicas: 1, maxReplicas: 2, metric: { target: 1 } } },
      status: 7,
      want: 2,
    },
    {
      name: "clamps a stale decision to a raised min",
      spec: { autoscaling: { minReplicas: 4, maxReplicas: 9, metric: { target: 1 } } },
      status: 1,
      want: 4,
    },
  ];
  for (const t of table) {
    it(t.name, function () {
      const m = md(t.spec);
      if (t.status !== undefined) m.status = { autoscaling: { desiredReplicas: t.status } };
      assert.equal(desiredReplicas(m), t.want);
    });
  }
});

describe("desiredService", function () {
  it("selects exactly the serving pods and records the in-cluster endpoint", function () {
    const m = md();
    const s = desiredService(m);
    assert.deepEqual(s.spec!.selector, { "maas.dev/deployment": "sentiment" });
    assert.equal(s.metadata.ownerReferences![0]!.uid, "uid-1");
    assert.equal(endpointOf(m), "http://sentiment.ml.svc:8080");
  });
});
