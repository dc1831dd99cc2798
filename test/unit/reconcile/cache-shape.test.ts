import assert from "node:assert/strict";
import type { V1Deployment, V1ManagedFieldsEntry, V1Pod, V1Service } from "@kubernetes/client-node";
import {
  childForCache,
  LAST_APPLIED_ANNOTATION,
  podForStatus,
  withoutBookkeeping,
} from "../../../operator/src/reconcile/cache-shape.ts";

describe("what the operator's caches keep", () => {
  it("drops managedFields and the last-applied annotation, keeps everything else, and leaves the input alone", () => {
    const d: V1Deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: {
        name: "x",
        namespace: "ns",
        annotations: { [LAST_APPLIED_ANNOTATION]: "{…}", "maas.dev/desired-hash": "h" },
        managedFields: [{ manager: "maas-operator", operation: "Apply" }],
      },
      spec: { selector: { matchLabels: { a: "b" } }, template: { spec: { containers: [{ name: "c" }] } } },
    };
    const before = structuredClone(d);
    const slim = withoutBookkeeping(d);
    assert.deepEqual(slim.metadata, { name: "x", namespace: "ns", annotations: { "maas.dev/desired-hash": "h" } });
    assert.deepEqual(slim.spec, before.spec);
    assert.deepEqual(d, before);
  });

  it("keeps of a child's managed fields only a marker, and only when our Update operation owns fields (our POST)", () => {
    const child = (managedFields: V1ManagedFieldsEntry[]): V1Service => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "x", namespace: "ns", managedFields },
      spec: { ports: [{ port: 80 }] },
    });
    const fields = { "f:spec": { "f:ports": {} } };
    const posted = childForCache(
      child([
        { manager: "maas-operator", operation: "Update", apiVersion: "v1", fieldsType: "FieldsV1", fieldsV1: fields },
        { manager: "kube-controller-manager", operation: "Update", fieldsV1: fields },
      ]),
    );
    assert.deepEqual(posted.metadata?.managedFields, [{ manager: "maas-operator", operation: "Update" }]);
    assert.deepEqual(posted.spec, { ports: [{ port: 80 }] });
    for (const others of [
      [{ manager: "maas-operator", operation: "Apply", fieldsV1: fields }],
      [{ manager: "someone-else", operation: "Update", fieldsV1: fields }],
      [{ manager: "maas-operator", operation: "Update", subresource: "status", fieldsV1: fields }],
    ]) {
      assert.equal(childForCache(child(others)).metadata?.managedFields, undefined, JSON.stringify(others));
    }
  });

  it("keeps of a Pod what the status computation reads, and drops its spec", () => {
    const pod: V1Pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "p",
        namespace: "ns",
        uid: "u",
        resourceVersion: "9",
        labels: { "maas.dev/deployment": "x" },
        annotations: { "maas.dev/template-hash": "t" },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "rs", uid: "r" }],
        deletionTimestamp: "2026-11-29T00:00:00Z" as never,
        managedFields: [{ manager: "kubelet" }],
      },
      spec: { containers: [{ name: "serve", image: "maas-serving", env: [{ name: "A", value: "1" }] }] },
      status: {
        phase: "Running",
        podIP: "10.0.0.1",
        conditions: [{ type: "PodScheduled", status: "True" }],
        containerStatuses: [
          {
            name: "serve",
            ready: true,
            restartCount: 2,
            image: "maas-serving",
            imageID: "sha256:1",
            started: true,
            state: { running: {} },
            lastState: { terminated: { exitCode: 1, message: "load failed" } },
            volumeMounts: [{ name: "model", mountPath: "/models" }],
          },
        ],
        initContainerStatuses: [{ name: "fetch", ready: false, restartCount: 0, image: "i", imageID: "" }],
      },
    };
    const slim = podForStatus(pod);
    assert.equal(slim.spec, undefined);
    assert.equal(slim.metadata?.managedFields, undefined);
    assert.deepEqual(slim.metadata?.annotations, { "maas.dev/template-hash": "t" });
    assert.deepEqual(slim.metadata?.labels, pod.metadata?.labels);
    assert.deepEqual(slim.metadata?.ownerReferences, pod.metadata?.ownerReferences);
    assert.equal(slim.metadata?.deletionTimestamp, pod.metadata?.deletionTimestamp);
    assert.equal(slim.status?.phase, "Running");
    assert.equal(slim.status?.podIP, undefined);
    assert.deepEqual(slim.status?.conditions, pod.status?.conditions);
    const serve = slim.status?.containerStatuses?.[0];
    assert.deepEqual(serve?.lastState, pod.status?.containerStatuses?.[0]?.lastState);
    assert.equal(serve?.restartCount, 2);
    assert.equal(serve?.ready, true);
    assert.equal(serve?.volumeMounts, undefined);
    assert.equal(slim.status?.initContainerStatuses?.[0]?.name, "fetch");
    assert.ok(JSON.stringify(slim).length < JSON.stringify(pod).length);
  });
});
