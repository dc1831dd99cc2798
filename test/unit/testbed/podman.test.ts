import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Container, V1PodSecurityContext } from "@kubernetes/client-node";
import { externalBases, imageSpecs } from "../../testbed/images.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { containerSecurity, memoryLimitBytes, nonRootRefusal, podmanRunArgs } from "../../testbed/podman.ts";

// The chart's operator pod, as templates/deployment.yaml renders it.
const podSecurity: V1PodSecurityContext = { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 2000 };
const operator: V1Container = {
  name: "operator",
  image: "localhost/maas-operator:k",
  args: ["--namespaces=", "--health-port=8081"],
  resources: { limits: { memory: "512Mi" } },
  securityContext: {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: 65532,
    capabilities: { drop: ["ALL"] },
  },
};

describe("test bed: a pod's container as podman runs it", () => {
  it("turns the pod's security context into podman's flags, the container's settings winning over the pod's", () => {
    const args = podmanRunArgs({
      name: "c1",
      image: operator.image!,
      args: operator.args,
      env: { A: "1" },
      mounts: [{ host: "/h/tmp", container: "/tmp", readOnly: false }],
      security: containerSecurity(podSecurity, operator),
      memoryBytes: memoryLimitBytes(operator),
      labels: { l: "v" },
    });
    for (const flag of [
      "--pull=never",
      "--name=c1",
      "--network=host",
      "--label=l=v",
      "--user=65532:65532",
      "--group-add=2000",
      "--read-only",
      "--read-only-tmpfs=false",
      "--security-opt=no-new-privileges",
      "--cap-drop=ALL",
      "--memory=536870912",
      "--volume=/h/tmp:/tmp:rw",
      "--env=A=1",
    ]) {
      assert.ok(args.includes(flag), `${flag} in ${args.join(" ")}`);
    }
    assert.deepEqual(args.slice(-3), [operator.image, ...operator.args!], "image, then args as the CMD");
    assert.ok(!args.some((a) => a.startsWith("--entrypoint")), "no command: the image's ENTRYPOINT stays");
  });

  it("replaces the entry point with the container's command, and leaves the root writable unless asked", () => {
    const args = podmanRunArgs({
      name: "c2",
      image: "i",
      command: ["maas-serving", "fetch"],
      env: {},
      mounts: [{ host: "/h/m", container: "/models", readOnly: true }],
      security: containerSecurity(undefined, { name: "c" }),
      labels: {},
    });
    assert.ok(args.includes('--entrypoint=["maas-serving","fetch"]'));
    assert.ok(args.includes("--volume=/h/m:/models:ro"));
    assert.ok(!args.includes("--read-only"));
    assert.ok(!args.some((a) => a.startsWith("--user") || a.startsWith("--cap-drop") || a.startsWith("--memory")));
  });

  it("refuses runAsNonRoot as a kubelet does: a root or non-numeric image user without runAsUser", () => {
    const nonRoot = containerSecurity({ runAsNonRoot: true }, { name: "c" });
    assert.equal(nonRootRefusal(nonRoot, "65532:65532"), undefined);
    assert.match(nonRootRefusal(nonRoot, "")!, /image will run as root/);
    assert.match(nonRootRefusal(nonRoot, "0")!, /image will run as root/);
    assert.match(nonRootRefusal(nonRoot, "node")!, /non-numeric user \(node\)/);
    const withUser = containerSecurity({ runAsNonRoot: true, runAsUser: 1000 }, { name: "c" });
    assert.equal(nonRootRefusal(withUser, ""), undefined, "runAsUser overrides the image's user");
    assert.equal(nonRootRefusal(containerSecurity(undefined, { name: "c" }), ""), undefined);
  });
});

describe("test bed: the base images the Dockerfiles build on", () => {
  it("are the official node image names, with the Debian release and Node major the bases are made with", () => {
    for (const spec of Object.values(imageSpecs)) {
      const bases = externalBases(readFileSync(join(repoRoot, spec.dockerfile), "utf8"));
      assert.deepEqual(bases.sort(), ["node:24-bookworm", "node:24-bookworm-slim"], spec.dockerfile);
    }
  });

  it("follow the build arguments, and never list an earlier stage", () => {
    const dockerfile = "ARG V=1\nARG B=base:${V}\nFROM ${B} AS build\nFROM build\nFROM other:2\n";
    assert.deepEqual(externalBases(dockerfile), ["base:1", "other:2"]);
    assert.deepEqual(externalBases(dockerfile, { B: "mirror/base:9" }), ["mirror/base:9", "other:2"]);
    assert.deepEqual(externalBases(dockerfile, { V: "2" }), ["base:2", "other:2"]);
  });
});
