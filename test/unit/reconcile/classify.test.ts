import assert from "node:assert/strict";
import {
  DESIRED_HASH_DRIFT,
  classifyChild,
  firstDrift,
  quantityValue,
  withDesiredHash,
} from "../../../operator/src/reconcile/classify.ts";
import { desiredDeployment } from "../../../operator/src/reconcile/desired-deployment.ts";
import { Annotations } from "../../../operator/src/reconcile/labels.ts";
import { md } from "./fixtures.ts";

const owned = { metadata: { ownerReferences: [{ uid: "uid-1", controller: true }] } };
/** A desired child: what the builders return always has metadata. */
const child = <T extends object>(o: T) => ({ metadata: {}, ...o });

describe("classifyChild", function () {
  it("creates a child that does not exist", function () {
    assert.deepEqual(classifyChild(md(), child({ spec: { a: 1 } }), undefined), { action: "create" });
  });
  it("refuses a child that another owner controls", function () {
    assert.deepEqual(
      classifyChild(md(), child({}), { metadata: { ownerReferences: [{ uid: "other", controller: true }] } }),
      {
        action: "conflict",
      },
    );
  });
  it("refuses a child without owner", function () {
    assert.deepEqual(classifyChild(md(), child({}), { metadata: {} }), { action: "conflict" });
  });
  it("does nothing when every field it sets already has its value, whatever else the server added", function () {
    const observed = { ...owned, spec: { replicas: 2, template: { x: "1", defaulted: true } }, status: {} };
    assert.deepEqual(classifyChild(md(), child({ spec: { replicas: 2, template: { x: "1" } } }), observed), {
      action: "none",
    });
  });
  it("does not take a listed child's missing apiVersion and kind for drift (list items omit them)", function () {
    const desired = child({ apiVersion: "apps/v1", kind: "Deployment", spec: { replicas: 2 } });
    const observed = { ...owned, spec: { replicas: 2 } };
    assert.deepEqual(classifyChild(md(), desired, observed), { action: "none" });
  });
  it("takes empty strings and lists the server dropped for what they are, not drift", function () {
    const desired = child({ spec: { tolerations: [{ key: "", operator: "Exists" }], args: [] } });
    const observed = { ...owned, spec: { tolerations: [{ operator: "Exists" }] } };
    assert.deepEqual(classifyChild(md(), desired, observed), { action: "none" });
    const changed = { ...owned, spec: { tolerations: [{ key: "gpu", operator: "Exists" }] } };
    assert.deepEqual(classifyChild(md(), desired, changed), { action: "update", drift: "spec.tolerations[0].key" });
  });
  it("sees an empty object replaced by something else (an emptyDir volume swapped for a hostPath)", function () {
    const desired = child({ spec: { volumes: [{ name: "models", emptyDir: {} }] } });
    const observed = { ...owned, spec: { volumes: [{ name: "models", hostPath: { path: "/srv/models" } }] } };
    assert.deepEqual(classifyChild(md(), desired, observed), { action: "update", drift: "spec.volumes[0].emptyDir" });
  });
  it("applies a spec that only removed a field (the desired hash differs), which field-by-field drift cannot see", function () {
    const built = (spec: Record<string, number>) => ({
      metadata: owned.metadata as { annotations?: Record<string, string> },
      spec,
    });
    const before = withDesiredHash(built({ a: 1, b: 2 }));
    // What the API server stores after applying `before`: everything we sent, plus what it adds.
    const stored = { ...structuredClone(before), status: { ready: true } };
    assert.deepEqual(classifyChild(md(), before, stored), { action: "none" });
    const after = withDesiredHash(built({ a: 1 }));
    assert.equal(firstDrift(after.spec, stored.spec, ""), undefined, "the removal is invisible field by field");
    assert.deepEqual(classifyChild(md(), after, stored), { action: "update", drift: DESIRED_HASH_DRIFT });
  });
  it("updates the Deployment when scheduling fields are removed from the spec", function () {
    const settings = { servingImage: "maas-serving:test" };
    const withAffinity = md({
      replicas: 1,
      scheduling: { affinity: { nodeAffinity: {} }, priorityClassName: "models" },
    });
    const stored = structuredClone(withDesiredHash(desiredDeployment(withAffinity, settings)));
    const without = withDesiredHash(desiredDeployment(md({ replicas: 1 }), settings));
    assert.equal(classifyChild(withAffinity, without, stored).action, "update");
  });
  it("stamps the same hash for the same desired object, and another one when anything in it changes", function () {
    const settings = { servingImage: "maas-serving:test" };
    const hash = (spec: Parameters<typeof md>[0]) =>
      withDesiredHash(desiredDeployment(md(spec), settings)).metadata.annotations?.[Annotations.desiredHash];
    assert.match(hash({ replicas: 1 }) ?? "", /^[0-9a-f]{16}$/);
    assert.equal(hash({ replicas: 1 }), hash({ replicas: 1 }));
    assert.notEqual(hash({ replicas: 1 }), hash({ replicas: 2 }));
    assert.notEqual(hash({ replicas: 1 }), hash({ replicas: 1, scheduling: { priorityClassName: "x" } }));
  });
  it("names the first drifted field", function () {
    const observed = { ...owned, spec: { replicas: 5 } };
    assert.deepEqual(classifyChild(md(), child({ spec: { replicas: 2 } }), observed), {
      action: "update",
      drift: "spec.replicas",
    });
  });
});

describe("firstDrift", function () {
  const table: { name: string; want: unknown; have: unknown; drift: string | undefined }[] = [
    { name: "equal quantities written differently", want: { cpu: "0.5" }, have: { cpu: "500m" }, drift: undefined },
    { name: "1000m equals 1", want: { cpu: "1000m" }, have: { cpu: "1" }, drift: undefined },
    { name: "different quantities", want: { memory: "2Gi" }, have: { memory: "1Gi" }, drift: "memory" },
    { name: "a list of another length", want: { a: [1, 2] }, have: { a: [1] }, drift: "a" },
    {
      name: "an element of a list",
      want: { a: [{ x: 1 }, { x: 2 }] },
      have: { a: [{ x: 1 }, { x: 3 }] },
      drift: "a[1].x",
    },
    { name: "a missing object", want: { a: { b: 1 } }, have: {}, drift: "a" },
    { name: "plain strings", want: { image: "a:1" }, have: { image: "a:2" }, drift: "image" },
  ];
  for (const t of table) {
    it(`detects ${t.name} correctly`, function () {
      assert.equal(firstDrift(t.want, t.have, ""), t.drift);
    });
  }
  it("parses binary and decimal suffixes", function () {
    assert.equal(quantityValue("2Gi"), 2 * 2 ** 30);
    assert.equal(quantityValue("3k"), 3000);
    assert.equal(quantityValue("abc"), undefined);
  });
});
