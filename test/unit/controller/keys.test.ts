import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { controllerOwnerKey, generationChanged, keyOf, labelKey } from "../../../operator/src/controller/keys.ts";
import { formatKey, parseKey, requeueAfter } from "../../../operator/src/controller/reconciler.ts";

const owned = (apiVersion: string, kind: string, controller: boolean): KubernetesObject => ({
  metadata: {
    namespace: "ml",
    name: "sentiment-abc",
    ownerReferences: [{ apiVersion, kind, name: "sentiment", uid: "u", controller }],
  },
});

describe("object keys", () => {
  it("formats and parses namespace/name keys both ways", () => {
    assert.equal(formatKey({ namespace: "ml", name: "x" }), "ml/x");
    assert.deepEqual(parseKey("ml/x"), { namespace: "ml", name: "x" });
    assert.deepEqual(parseKey("node-1"), { namespace: "", name: "node-1" });
  });

  for (const bad of ["", "/x", "ml/", "a/b/c"]) {
    it(`rejects the malformed key ${JSON.stringify(bad)} with a message naming it`, () => {
      assert.throws(() => parseKey(bad), /invalid object key/);
    });
  }

  it("maps an object to its own key", () => {
    assert.equal(keyOf({ metadata: { namespace: "ml", name: "x" } }), "ml/x");
  });

  const ownerCases: [string, KubernetesObject, string | undefined][] = [
    [
      "maps a child to its controlling ModelDeployment",
      owned("maas.dev/v1alpha1", "ModelDeployment", true),
      "ml/sentiment",
    ],
    ["ignores a non-controller owner reference", owned("maas.dev/v1alpha1", "ModelDeployment", false), undefined],
    ["ignores an owner of another kind", owned("apps/v1", "ReplicaSet", true), undefined],
    ["ignores a same-named kind from another API group", owned("other.io/v1", "ModelDeployment", true), undefined],
    ["ignores an object without owners", { metadata: { namespace: "ml", name: "x" } }, undefined],
  ];
  for (const [name, obj, expected] of ownerCases) {
    it(name, () => {
      assert.equal(controllerOwnerKey(obj, "maas.dev", "ModelDeployment"), expected);
    });
  }

  it("maps a Pod to its ModelDeployment by label", () => {
    const pod = { metadata: { namespace: "ml", name: "p", labels: { "maas.dev/model-deployment": "sentiment" } } };
    assert.equal(labelKey(pod, "maas.dev/model-deployment"), "ml/sentiment");
    assert.equal(labelKey({ metadata: { namespace: "ml", name: "p" } }, "maas.dev/model-deployment"), undefined);
  });

  it("passes spec changes and drops status-only updates", () => {
    const filter = generationChanged();
    const md = (generation: number, rv: string): KubernetesObject => ({
      metadata: { namespace: "ml", name: "x", generation, resourceVersion: rv },
    });
    assert.equal(filter(md(1, "1"), "add"), true);
    assert.equal(filter(md(1, "2"), "update"), false, "status write: same generation");
    assert.equal(filter(md(2, "3"), "update"), true, "spec change: new generation");
    assert.equal(filter(md(2, "4"), "delete"), true);
    assert.equal(filter(md(2, "5"), "update"), true, "after a delete the object is new to the filter");
  });

  it("refuses a requeue without a positive delay", () => {
    assert.throws(() => requeueAfter(0), /positive delay/);
  });
});
