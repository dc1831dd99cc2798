import assert from "node:assert/strict";
import type { V1ManagedFieldsEntry } from "@kubernetes/client-node";
import { hasUpdateFields, unionOfFields, updateFieldsAsApply } from "../../../operator/src/controller/apply.ts";

describe("moving a POST's fields to our Apply operation", () => {
  const postFields = { "f:metadata": { "f:labels": { ".": {}, "f:app": {} } }, "f:data": { ".": {}, "f:a": {} } };

  it("relabels our Update entry as Apply, with its fields, and leaves other managers' entries alone", () => {
    const theirs: V1ManagedFieldsEntry = {
      manager: "kube-controller-manager",
      operation: "Update",
      apiVersion: "apps/v1",
      fieldsType: "FieldsV1",
      fieldsV1: { "f:status": {} },
      subresource: "status",
    };
    const time = "2026-12-08T00:00:00Z" as unknown as Date;
    const ours: V1ManagedFieldsEntry = {
      manager: "maas-operator",
      operation: "Update",
      apiVersion: "apps/v1",
      time,
      fieldsType: "FieldsV1",
      fieldsV1: postFields,
    };
    assert.deepEqual(updateFieldsAsApply([ours, theirs]), [
      {
        manager: "maas-operator",
        operation: "Apply",
        apiVersion: "apps/v1",
        time,
        fieldsType: "FieldsV1",
        fieldsV1: postFields,
      },
      theirs,
    ]);
  });

  it("merges the Update entry's fields into an Apply entry we already have", () => {
    const applied: V1ManagedFieldsEntry = {
      manager: "maas-operator",
      operation: "Apply",
      apiVersion: "v1",
      fieldsType: "FieldsV1",
      fieldsV1: { "f:data": { "f:b": {} } },
    };
    const posted: V1ManagedFieldsEntry = Object.assign({}, applied, { operation: "Update", fieldsV1: postFields });
    const moved = updateFieldsAsApply([posted, applied]);
    assert.equal(moved?.length, 1);
    assert.deepEqual(moved?.[0]?.fieldsV1, {
      "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
      "f:data": { ".": {}, "f:a": {}, "f:b": {} },
    });
    assert.equal(moved?.[0]?.operation, "Apply");
  });

  it("has nothing to move without our Update entry on the object itself", () => {
    const cases: V1ManagedFieldsEntry[][] = [
      [],
      [{ manager: "maas-operator", operation: "Apply", fieldsV1: postFields }],
      [{ manager: "someone-else", operation: "Update", fieldsV1: postFields }],
      [{ manager: "maas-operator", operation: "Update", subresource: "status", fieldsV1: postFields }],
    ];
    for (const entries of cases) {
      assert.equal(updateFieldsAsApply(entries), undefined, JSON.stringify(entries));
      assert.equal(hasUpdateFields({ metadata: { managedFields: entries } }), false, JSON.stringify(entries));
    }
    assert.equal(hasUpdateFields(undefined), false);
    assert.equal(
      hasUpdateFields({ metadata: { managedFields: [{ manager: "maas-operator", operation: "Update" }] } }),
      true,
    );
  });

  it("unites field sets path by path, keeping both sides' leaves, and leaves its inputs alone", () => {
    const a = { "f:spec": { "f:template": { "f:spec": { 'k:{"name":"c"}': { ".": {}, "f:image": {} } } } } };
    const b = { "f:spec": { "f:replicas": {}, "f:template": { "f:spec": { 'k:{"name":"c"}': { "f:env": {} } } } } };
    const before = structuredClone([a, b]);
    assert.deepEqual(unionOfFields(a, b), {
      "f:spec": {
        "f:replicas": {},
        "f:template": { "f:spec": { 'k:{"name":"c"}': { ".": {}, "f:image": {}, "f:env": {} } } },
      },
    });
    assert.deepEqual([a, b], before);
    assert.deepEqual(unionOfFields({}, b), b);
  });
});
