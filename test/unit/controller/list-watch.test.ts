import assert from "node:assert/strict";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { ApiError } from "../../../operator/src/controller/errors.ts";
import { KubeClient } from "../../../operator/src/controller/kube-client.ts";
import { ListWatch } from "../../../operator/src/controller/list-watch.ts";
import {
  HttpWatch,
  type WatchCallback,
  type WatchDone,
  type WatchTransport,
} from "../../../operator/src/controller/watch.ts";
import { flush } from "./fake-clock.ts";

const obj = (name: string, rv: string, extra: Record<string, unknown> = {}): KubernetesObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", resourceVersion: rv, ...extra },
});

class Scripted implements WatchTransport {
  calls: { query: Record<string, unknown>; event: WatchCallback; end: WatchDone }[] = [];
  watch(_p: string, query: Record<string, unknown>, event: WatchCallback, end: WatchDone): Promise<AbortController> {
    this.calls.push({ query, event, end });
    return Promise.resolve(new AbortController());
  }
}

function setup(lists: KubernetesListObject<KubernetesObject>[], transform?: (o: KubernetesObject) => KubernetesObject) {
  const transport = new Scripted();
  let listCalls = 0;
  const lw = new ListWatch<KubernetesObject>({
    path: "/api/v1/configmaps",
    transport,
    list: () => {
      const next = lists[listCalls++];
      return next ? Promise.resolve(next) : Promise.reject(new Error("no list left"));
    },
    labelSelector: "a=b",
    transform,
  });
  const seen: string[] = [];
  lw.on("add", (o) => seen.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  lw.on("update", (o) => seen.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  lw.on("delete", (o) => seen.push(`delete ${o.metadata?.name}`));
  const errors: unknown[] = [];
  lw.on("error", (e) => errors.push(e));
  return { lw, transport, seen, errors, listCalls: () => listCalls };
}

describe("ListWatch (the informer's cache)", () => {
  it("lists, watches from the list's resourceVersion with bookmarks, and applies events", async () => {
    const t = setup([{ metadata: { resourceVersion: "10" }, items: [obj("a", "5")] }]);
    await t.lw.start();
    assert.deepEqual(t.transport.calls[0]?.query, {
      resourceVersion: "10",
      allowWatchBookmarks: "true",
      labelSelector: "a=b",
    });
    const w = t.transport.calls[0];
    w.event("ADDED", obj("b", "11"));
    w.event("MODIFIED", obj("a", "12"));
    w.event("MODIFIED", obj("a", "12")); // same resourceVersion: no update
    w.event("DELETED", obj("b", "13"));
    w.event("BOOKMARK", { metadata: { resourceVersion: "20" } });
    assert.deepEqual(t.seen, ["add a@5", "add b@11", "update a@12", "delete b"]);
    assert.equal(t.lw.latestResourceVersion(), "20");
    assert.deepEqual(
      t.lw.list().map((o) => o.metadata?.name),
      ["a"],
    );
    assert.equal(t.lw.get("a", "ns")?.metadata?.resourceVersion, "12");
    await t.lw.stop();
  });

  it("reconnects from the last resourceVersion when the server ends a watch, and relists after 410 Gone, deleting what is gone", async () => {
    const t = setup([
      { metadata: { resourceVersion: "10" }, items: [obj("a", "5"), obj("b", "6")] },
      { metadata: { resourceVersion: "30" }, items: [obj("b", "6"), obj("c", "29")] },
    ]);
    await t.lw.start();
    t.transport.calls[0]!.event("MODIFIED", obj("a", "15"));
    t.transport.calls[0]!.end(null);
    await flush();
    // The first reconnect after a clean end comes at once (no events lost in between: same resourceVersion).
    assert.equal(t.transport.calls[1]?.query["resourceVersion"], "15");
    assert.equal(t.listCalls(), 1);
    t.transport.calls[1].event("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    t.transport.calls[1].end(null);
    await flush();
    assert.equal(t.listCalls(), 2);
    assert.deepEqual(t.seen.slice(2), ["update a@15", "delete a", "add c@29"]);
    await t.lw.stop();
  });

  it("reconnects at once after a client-side inactivity timeout, and reports any other failure to its error handlers", async () => {
    const t = setup([{ metadata: { resourceVersion: "10" }, items: [] }]);
    await t.lw.start();
    t.transport.calls[0]!.end(Object.assign(new Error("quiet"), { name: "TimeoutError" }));
    await flush();
    assert.equal(t.transport.calls.length, 2);
    const refused = new ApiError("watch", "/x", 403, "Forbidden", "no");
    t.transport.calls[1]!.end(refused);
    await flush();
    assert.deepEqual(t.errors, [refused]);
    assert.equal(t.transport.calls.length, 2, "stops; the informer's shard restarts it with back-off");
    await t.lw.stop();
  });

  it("ends a watch that connects after a stop, and ignores what it sends", async () => {
    const transport = new (class implements WatchTransport {
      connect: ((c: AbortController) => void) | undefined;
      event: WatchCallback | undefined;
      watch(_p: string, _q: Record<string, unknown>, event: WatchCallback): Promise<AbortController> {
        this.event = event;
        return new Promise((resolve) => (this.connect = resolve));
      }
    })();
    const lw = new ListWatch<KubernetesObject>({
      path: "/api/v1/configmaps",
      transport,
      list: () => Promise.resolve({ metadata: { resourceVersion: "1" }, items: [] }),
    });
    const started = lw.start();
    await flush();
    await lw.stop();
    const late = new AbortController();
    transport.connect!(late);
    await started;
    assert.equal(late.signal.aborted, true, "the late watch is ended");
    transport.event!("ADDED", obj("ghost", "2"));
    assert.equal(lw.get("ghost", "ns"), undefined);
  });

  it("stores what the transform returns, from lists and from watch events", async () => {
    const slim = (o: KubernetesObject): KubernetesObject => {
      const { managedFields: _dropped, ...metadata } = o.metadata ?? {};
      return { ...o, metadata };
    };
    const t = setup(
      [{ metadata: { resourceVersion: "1" }, items: [obj("a", "1", { managedFields: [{ manager: "x" }] })] }],
      slim,
    );
    await t.lw.start();
    t.transport.calls[0]!.event("ADDED", obj("b", "2", { managedFields: [{ manager: "y" }] }));
    assert.equal(t.lw.get("a", "ns")?.metadata?.managedFields, undefined);
    assert.equal(t.lw.get("b", "ns")?.metadata?.managedFields, undefined);
    await t.lw.stop();
  });
});

describe("HttpWatch (one watch connection over the operator's client)", () => {
  let server: Server;
  let respond: (res: ServerResponse, url: URL) => void = () => undefined;
  let client: KubeClient;
  const urls: URL[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      urls.push(url);
      respond(res, url);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new KubeClient({
      server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: "secret",
      source: "a test",
    });
  });
  after(async () => {
    client.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const run = (w: HttpWatch) =>
    new Promise<{ events: string[]; err: unknown }>((resolve) => {
      const events: string[] = [];
      void w.watch(
        "/api/v1/configmaps",
        { resourceVersion: "7", labelSelector: "a=b" },
        (phase, o) => events.push(`${phase} ${(o as KubernetesObject).metadata?.name ?? ""}`),
        (err) => {
          resolve({ events, err });
        },
      );
    });

  it("streams newline-separated events with the query and ends cleanly when the server ends the stream", async () => {
    respond = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(`${JSON.stringify({ type: "ADDED", object: obj("a", "8") })}\n{"type":"MODIFIED",`);
      setTimeout(() => res.end(`"object":${JSON.stringify(obj("a", "9"))}}\n`), 20);
    };
    const { events, err } = await run(new HttpWatch(client));
    assert.deepEqual(events, ["ADDED a", "MODIFIED a"]);
    assert.equal(err, null);
    const url = urls.at(-1)!;
    assert.equal(url.searchParams.get("watch"), "true");
    assert.equal(url.searchParams.get("resourceVersion"), "7");
    assert.equal(url.searchParams.get("labelSelector"), "a=b");
  });

  it("ends with an ApiError carrying the status code when the server refuses the watch (410 Gone)", async () => {
    respond = (res) => {
      res.writeHead(410, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", code: 410, reason: "Expired", message: "too old resource version: 7" }));
    };
    const { err } = await run(new HttpWatch(client));
    assert.ok(err instanceof ApiError);
    assert.equal(err.statusCode, 410);
    assert.match(err.message, /too old resource version/);
  });

  it("ends with a TimeoutError when the connection goes quiet", async () => {
    respond = (res) => {
      res.writeHead(200);
      res.write("\n");
    };
    const { err } = await run(new HttpWatch(client, { inactivityMs: 100 }));
    assert.equal((err as Error).name, "TimeoutError");
  });
});
