import assert from "node:assert/strict";
import type { V1ConfigMap, V1Service } from "@kubernetes/client-node";
import {
  ADOPT_ATTEMPTS,
  adoptCreatedFields,
  applyObject,
  applyStatus,
  createObject,
  FieldManagers,
  hasUpdateFields,
} from "../../../operator/src/controller/apply.ts";
import { isAlreadyExists, isConflict } from "../../../operator/src/controller/errors.ts";
import { EventRecorder } from "../../../operator/src/controller/events.ts";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { silentLogger } from "../../../operator/src/controller/log.ts";
import { OperatorMetrics } from "../../../operator/src/controller/metrics.ts";
import { Resources, collectionPath, objectPath } from "../../../operator/src/controller/resources.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";

interface EventList {
  items: {
    metadata: { name: string };
    reason: string;
    note: string;
    series?: { count: number };
    regarding: { name: string };
  }[];
}

describe("Server-side apply, status and Events against a real API server", function () {
  let tb: Testbed;
  let client: KubeClient;
  let metrics: OperatorMetrics;
  let ns: string;

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    metrics = new OperatorMetrics();
    client = new KubeClient(tb.access, { metrics });
    ns = await tb.createNamespace("apply");
  });

  const configMap = (data: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "child", namespace: ns, labels: { "app.kubernetes.io/managed-by": "maas-operator" } },
    data,
  });

  it("creates on first apply and makes no write when the same object is applied again", async () => {
    const first = await applyObject(client, Resources.ConfigMap, configMap({ a: "1", b: "2" }));
    const second = await applyObject(client, Resources.ConfigMap, configMap({ a: "1", b: "2" }));
    assert.equal(second.metadata?.resourceVersion, first.metadata?.resourceVersion);
    assert.deepEqual(second.data, { a: "1", b: "2" });
    assert.ok(
      second.metadata?.managedFields?.some((f) => f.manager === FieldManagers.children && f.operation === "Apply"),
    );
  });

  /** Another writer's server-side apply of a ConfigMap's data, under its own field manager. */
  const applyAsSomeoneElse = (name: string, data: Record<string, string>, force = false) =>
    client.request("apply", objectPath(Resources.ConfigMap, ns, name), {
      body: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data },
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: "someone-else", force: String(force) },
    });

  const owners = (obj: { metadata?: { managedFields?: { manager?: string; operation?: string }[] } }) =>
    (obj.metadata?.managedFields ?? []).map((f) => `${f.manager ?? ""}/${f.operation ?? ""}`);

  it("creates with a POST, and gets 409 AlreadyExists with nothing written when the object exists", async () => {
    const fresh = { ...configMap({ a: "1" }), metadata: { name: "created", namespace: ns } };
    const created = await createObject(client, Resources.ConfigMap, fresh);
    assert.deepEqual(created.data, { a: "1" });
    assert.deepEqual(owners(created), [`${FieldManagers.children}/Update`], "a POST's fields are its Update's");
    assert.ok(hasUpdateFields(created));
    // Exists now (ours or anyone's): refused, untouched.
    await assert.rejects(createObject(client, Resources.ConfigMap, { ...fresh, data: { a: "2" } }), (err: unknown) =>
      isAlreadyExists(err),
    );
    const stored = await client.request<V1ConfigMap>("get", objectPath(Resources.ConfigMap, ns, "created"));
    assert.equal(stored.metadata?.resourceVersion, created.metadata.resourceVersion);
    assert.deepEqual(stored.data, { a: "1" });
  });

  it("moves a POST's fields to its Apply operation, so an apply removes a field it stops sending", async () => {
    const object = (name: string, data: Record<string, string>) => ({
      ...configMap(data),
      metadata: { name, namespace: ns, labels: { app: name } },
    });
    // Without the move: the POST's Update entry keeps owning b, and the apply cannot remove it.
    await createObject(client, Resources.ConfigMap, object("not-adopted", { a: "1", b: "2" }));
    const kept = await applyObject(client, Resources.ConfigMap, object("not-adopted", { a: "1" }));
    assert.deepEqual(kept.data, { a: "1", b: "2" }, "the reason for the move: b stays");

    const created = await createObject(client, Resources.ConfigMap, object("adopted", { a: "1", b: "2" }));
    assert.equal(await adoptCreatedFields(client, Resources.ConfigMap, { namespace: ns, name: "adopted" }), true);
    const moved = await client.request<V1ConfigMap>("get", objectPath(Resources.ConfigMap, ns, "adopted"));
    assert.deepEqual(owners(moved), [`${FieldManagers.children}/Apply`]);
    assert.deepEqual(moved.metadata?.managedFields?.[0]?.fieldsV1, created.metadata.managedFields?.[0]?.fieldsV1);
    assert.deepEqual(moved.data, created.data);
    assert.deepEqual(moved.metadata?.labels, created.metadata.labels);
    // Gone (deleted after the cache saw it): nothing to move, and the apply that follows creates it.
    assert.equal(await adoptCreatedFields(client, Resources.ConfigMap, { namespace: ns, name: "never-there" }), false);
    // Nothing left to move: no write.
    assert.equal(await adoptCreatedFields(client, Resources.ConfigMap, { namespace: ns, name: "adopted" }), false);
    const same = await client.request<V1ConfigMap>("get", objectPath(Resources.ConfigMap, ns, "adopted"));
    assert.equal(same.metadata?.resourceVersion, moved.metadata?.resourceVersion);

    const applied = await applyObject(client, Resources.ConfigMap, {
      ...object("adopted", { a: "1" }),
      metadata: { name: "adopted", namespace: ns },
    });
    assert.deepEqual(applied.data, { a: "1" });
    assert.equal(applied.metadata.labels, undefined);
    assert.deepEqual(owners(applied), [`${FieldManagers.children}/Apply`]);
  });

  it("moves a POST's fields only if the object is still as it read it, reading again when it changed", async () => {
    /** The client, with someone else writing the ConfigMap just before each of the first `races` patches. */
    const racing = (name: string, races: number): { client: KubeClient; patches: () => number } => {
      let patches = 0;
      const through = new Proxy(client, {
        get(target, prop, receiver) {
          if (prop !== "request") return Reflect.get(target, prop, receiver) as unknown;
          return async (verb: string, path: string, options?: object) => {
            if (verb === "patch" && ++patches <= races) await applyAsSomeoneElse(name, { [`c${patches}`]: "3" });
            return target.request(verb as "get", path, options);
          };
        },
      });
      return { client: through, patches: () => patches };
    };
    const created = (name: string) =>
      createObject(client, Resources.ConfigMap, { ...configMap({ a: "1" }), metadata: { name, namespace: ns } });

    // Changed once between the GET and the patch: the 409 leads to a second read, and the move.
    await created("raced-once");
    const once = racing("raced-once", 1);
    assert.equal(
      await adoptCreatedFields(once.client, Resources.ConfigMap, { namespace: ns, name: "raced-once" }),
      true,
    );
    assert.equal(once.patches(), 2);
    const moved = await client.request<V1ConfigMap>("get", objectPath(Resources.ConfigMap, ns, "raced-once"));
    assert.deepEqual(owners(moved).sort(), [`${FieldManagers.children}/Apply`, "someone-else/Apply"]);
    assert.deepEqual(moved.data, { a: "1", c1: "3" });

    // Changed before every patch: it gives up after ADOPT_ATTEMPTS with the 409, nothing moved.
    await created("raced");
    const always = racing("raced", Infinity);
    await assert.rejects(
      adoptCreatedFields(always.client, Resources.ConfigMap, { namespace: ns, name: "raced" }),
      (err: unknown) => isConflict(err),
    );
    assert.equal(always.patches(), ADOPT_ATTEMPTS);
    const stored = await client.request<V1ConfigMap>("get", objectPath(Resources.ConfigMap, ns, "raced"));
    assert.ok(hasUpdateFields(stored), "the POST's fields are still its Update's");
    assert.deepEqual(owners(stored).sort(), [`${FieldManagers.children}/Update`, "someone-else/Apply"]);
  });

  it("removes fields it no longer sends, and keeps fields another manager owns", async () => {
    // Someone else adds their own key with their own field manager.
    await applyAsSomeoneElse("child", { theirs: "x" });
    const applied = await applyObject(client, Resources.ConfigMap, configMap({ a: "1" }));
    assert.deepEqual(applied.data, { a: "1", theirs: "x" });
  });

  it("takes a field back from another writer when forcing, as the single writer of what it sends", async () => {
    await applyAsSomeoneElse("child", { a: "hijacked" }, true);
    await assert.rejects(
      applyObject(client, Resources.ConfigMap, configMap({ a: "1" }), { force: false }),
      (err: Error) => /409/.test(err.message) && /conflict/i.test(err.message),
    );
    const applied = await applyObject(client, Resources.ConfigMap, configMap({ a: "1" }));
    assert.equal(applied.data?.a, "1");
  });

  it("refuses to apply an object read back from the cache, naming the problem", async () => {
    const stored = await client.get<V1ConfigMap & { apiVersion: string; kind: string; metadata: { name: string } }>(
      objectPath(Resources.ConfigMap, ns, "child"),
    );
    assert.throws(() => applyObject(client, Resources.ConfigMap, stored), /resourceVersion\/managedFields/);
  });

  it("applies status under its own field manager, dropping status fields it stops sending", async () => {
    // A Service: in the full test bed no controller writes a ClusterIP Service's status, so every
    // status field here is ours (a Deployment's status is the deployment controller's too).
    const service = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "status-target", namespace: ns },
      spec: { selector: { app: "s" }, ports: [{ port: 80 }] },
    };
    await applyObject(client, Resources.Service, service);
    const key = { namespace: ns, name: "status-target" };
    const condition = (type: string) => ({
      type,
      status: "True",
      reason: "Test",
      message: "",
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });
    await applyStatus(client, Resources.Service, key, { conditions: [condition("Probed"), condition("Extra")] });
    const again = await applyStatus<V1Service>(client, Resources.Service, key, { conditions: [condition("Probed")] });
    assert.deepEqual(
      again.status?.conditions?.map((c) => c.type),
      ["Probed"],
    );
    const managers = again.metadata?.managedFields?.filter((f) => f.subresource === "status").map((f) => f.manager);
    assert.deepEqual(managers, [FieldManagers.status]);
    await assert.rejects(
      applyStatus(client, Resources.Service, key, { conditions: [condition("Probed")] }, { resourceVersion: "1" }),
      /409/,
      "a stale resourceVersion makes a conditional status apply fail",
    );
  });

  const eventRecorder = (options: { maxBackground?: number; writers?: number; through?: KubeClient } = {}) =>
    new EventRecorder({
      client: options.through ?? client,
      controller: "maas.dev/maas-operator",
      instance: "test",
      log: silentLogger(),
      metrics,
      ...(options.maxBackground === undefined ? {} : { maxBackground: options.maxBackground }),
      ...(options.writers === undefined ? {} : { writers: options.writers }),
    });

  /** The real client, counting how many of its requests are at the API server at once. */
  const countingClient = () => {
    const seen = { inFlight: 0, most: 0 };
    const through = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop !== "request") return Reflect.get(target, prop, receiver) as unknown;
        return async (...args: Parameters<KubeClient["request"]>) => {
          seen.inFlight += 1;
          seen.most = Math.max(seen.most, seen.inFlight);
          try {
            return await target.request(...args);
          } finally {
            seen.inFlight -= 1;
          }
        };
      },
    });
    return { through, seen };
  };

  it("records an Event once and counts repeats into its series instead of creating more", async () => {
    const recorder = eventRecorder();
    const regarding = { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "child" };
    const applied = {
      regarding,
      type: "Normal",
      reason: "Applied",
      action: "Apply",
      note: "Applied ConfigMap child",
    } as const;
    for (let i = 0; i < 3; i++) await recorder.record(applied);
    await recorder.record({
      ...applied,
      type: "Warning",
      reason: "ApplyFailed",
      note: "Failed to apply ConfigMap child",
    });
    const events = await client.list<EventList>(collectionPath(Resources.Event, ns));
    const mine = events.items.filter((e) => e.regarding.name === "child");
    assert.equal(mine.length, 2);
    assert.equal(mine.find((e) => e.reason === "Applied")?.series?.count, 3);
    assert.equal(mine.find((e) => e.reason === "ApplyFailed")?.series, undefined);
  });

  it("counts every API request by verb and code", async () => {
    const metric = await metrics.apiRequests.get();
    const count = (verb: string, code: string) =>
      metric.values.find((v) => v.labels.verb === verb && v.labels.code === code)?.value ?? 0;
    assert.ok(count("apply", "200") + count("apply", "201") >= 6);
    // A field-ownership conflict (applied without force) and a stale conditional status apply.
    assert.equal(count("apply", "409"), 2);
    assert.equal(count("create", "201"), 7, "five ConfigMaps and two Events created");
    assert.equal(count("create", "409"), 1, "a POST of an object that exists");
    assert.equal(count("patch", "200"), 4, "two repeats counted into the first Event, two moves of a POST's fields");
    assert.equal(count("patch", "409"), 1 + ADOPT_ATTEMPTS, "moves of a POST's fields after the object changed");
  });

  it("writes emitted Events in the background, drops what exceeds its bound, and says so", async () => {
    const recorder = eventRecorder({ maxBackground: 2 });
    const regarding = { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "burst" };
    const note = (i: number) =>
      ({ regarding, type: "Normal", reason: "Applied", action: "Apply", note: `Applied ${i}` }) as const;
    const dropped = async () =>
      (await metrics.events.get()).values.find((v) => v.labels.action === "dropped")?.value ?? 0;
    const droppedBefore = await dropped();
    for (let i = 0; i < 3; i++) recorder.emit(note(i));
    assert.throws(
      () => {
        recorder.emit({ ...note(9), reason: "not camel" });
      },
      /CamelCase/,
      "a programming error throws at once",
    );
    await recorder.settled();
    const events = await client.list<EventList>(collectionPath(Resources.Event, ns));
    const notes = events.items.filter((e) => e.regarding.name === "burst").map((e) => e.note);
    assert.deepEqual(notes.sort(), ["Applied 0", "Applied 1"], "the third waited behind a full queue and was dropped");
    assert.equal((await dropped()) - droppedBefore, 1);
    recorder.emit(note(3));
    await recorder.settled();
    const after = await client.list<EventList>(collectionPath(Resources.Event, ns));
    assert.ok(
      after.items.some((e) => e.note === "Applied 3"),
      "room again once the first two were written",
    );
  });

  it("writes emitted Events one at a time, in the order emitted, unless told to use more writers", async () => {
    const note = (name: string, i: number) =>
      ({
        regarding: { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name },
        type: "Normal",
        reason: "Applied",
        action: "Apply",
        note: `Applied ${i}`,
      }) as const;
    const written = async (name: string) =>
      (await client.list<EventList>(collectionPath(Resources.Event, ns))).items
        .filter((e) => e.regarding.name === name)
        .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)) // time-ordered names
        .map((e) => e.note);
    const one = countingClient();
    const recorder = eventRecorder({ through: one.through });
    for (let i = 0; i < 8; i++) recorder.emit(note("ordered", i));
    await recorder.settled();
    assert.equal(one.seen.most, 1, "one Event at the API server at a time");
    assert.deepEqual(
      await written("ordered"),
      [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `Applied ${i}`),
    );
    const three = countingClient();
    const wider = eventRecorder({ through: three.through, writers: 3 });
    for (let i = 0; i < 8; i++) wider.emit(note("wider", i));
    await wider.settled();
    assert.ok(three.seen.most <= 3, `at most 3 at once, saw ${three.seen.most}`);
    assert.equal((await written("wider")).length, 8);
    await wider.settled(); // nothing waiting: resolves at once
  });

  it("at shutdown waits for queued Events only as long as it is told, and counts the rest as dropped", async () => {
    const recorder = eventRecorder();
    const regarding = { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "late" };
    const dropped = async () =>
      (await metrics.events.get()).values.find((v) => v.labels.action === "dropped")?.value ?? 0;
    const droppedBefore = await dropped();
    for (let i = 0; i < 50; i++)
      recorder.emit({ regarding, type: "Normal", reason: "Applied", action: "Apply", note: `Applied ${i}` });
    await recorder.settled(0); // the first is at the API server; the other 49 wait behind it
    await recorder.settled(); // the one in flight
    const written = (await client.list<EventList>(collectionPath(Resources.Event, ns))).items.filter(
      (e) => e.regarding.name === "late",
    );
    assert.ok(written.length >= 1 && written.length < 50, `some written, not all: ${written.length}`);
    assert.equal((await dropped()) - droppedBefore, 50 - written.length, "every Event not written is counted");
  });
});
