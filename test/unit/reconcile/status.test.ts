import assert from "node:assert/strict";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { computeStatus, statusChanged, type Observed } from "../../../operator/src/reconcile/status.ts";
import { md } from "./fixtures.ts";

const now = new Date("2026-11-28T12:00:00Z");

function deployment(opts: {
  replicas: number;
  ready: number;
  updated?: number;
  available?: number;
  observed?: boolean;
}): V1Deployment {
  return {
    metadata: { name: "sentiment", generation: 2 },
    spec: { replicas: opts.replicas, selector: {}, template: {} },
    status: {
      observedGeneration: opts.observed === false ? 1 : 2,
      replicas: opts.replicas,
      readyReplicas: opts.ready,
      updatedReplicas: opts.updated ?? opts.replicas,
      availableReplicas: opts.available ?? opts.ready,
    },
  };
}

function pod(name: string, status: NonNullable<V1Pod["status"]>): V1Pod {
  return { metadata: { name }, status };
}

const readyPod = (name: string) =>
  pod(name, {
    phase: "Running",
    conditions: [{ type: "PodScheduled", status: "True" }],
    containerStatuses: [{ name: "serve", ready: true, restartCount: 0, image: "", imageID: "" }],
  });

const cond = (o: Observed, type: string, m = md({ replicas: 2 })) => {
  const c = computeStatus(m, o, now).status.conditions!.find((x) => x.type === type)!;
  return c;
};

describe("computeStatus", function () {
  it("is Ready when every desired replica is updated and ready", function () {
    const o: Observed = {
      deployment: deployment({ replicas: 2, ready: 2 }),
      pods: [readyPod("a"), readyPod("b")],
      conflicts: [],
    };
    const { status } = computeStatus(md({ replicas: 2 }), o, now);
    const ready = status.conditions!.find((c) => c.type === "Ready")!;
    assert.equal(ready.status, "True");
    assert.equal(ready.reason, "AllReplicasReady");
    assert.equal(status.replicasSummary, "2/2");
    assert.equal(status.observedGeneration, 3);
    assert.equal(status.selector, "maas.dev/deployment=sentiment");
    assert.equal(status.endpoint, "http://sentiment.ml.svc:8080");
    assert.equal(cond(o, "ModelAvailable").status, "True");
    assert.equal(cond(o, "Progressing").reason, "RolloutComplete");
    assert.equal(cond(o, "Degraded").status, "False");
  });

  it("is not Ready while the Deployment has not observed its newest generation", function () {
    const o: Observed = {
      deployment: deployment({ replicas: 2, ready: 2, observed: false }),
      pods: [readyPod("a")],
      conflicts: [],
    };
    assert.equal(cond(o, "Ready").status, "False");
    assert.equal(cond(o, "Progressing").status, "True");
  });

  it("quotes the scheduler when pods wait for GPUs", function () {
    const message =
      "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 Insufficient nvidia.com/gpu.";
    const pending = pod("a", {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message }],
    });
    const o: Observed = {
      deployment: deployment({ replicas: 2, ready: 1 }),
      pods: [readyPod("b"), pending],
      conflicts: [],
    };
    const scheduled = cond(o, "Scheduled");
    assert.equal(scheduled.status, "False");
    assert.equal(scheduled.reason, "InsufficientGPU");
    assert.equal(scheduled.message, `1/2 pods cannot be scheduled: ${message}`);
    assert.match(
      cond(o, "Ready").message,
      /^1\/2 replicas ready: 1\/2 pods cannot be scheduled: 0\/4 nodes are available/,
    );
  });

  it("says Unschedulable, not InsufficientGPU, when the scheduler names something else", function () {
    const pending = pod("a", {
      conditions: [
        { type: "PodScheduled", status: "False", message: "0/4 nodes are available: 4 Insufficient memory." },
      ],
    });
    assert.equal(
      cond({ deployment: deployment({ replicas: 1, ready: 0 }), pods: [pending], conflicts: [] }, "Scheduled").reason,
      "Unschedulable",
    );
  });

  const fetchFailed = (message: string) =>
    pod("a", {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "True" }],
      initContainerStatuses: [
        {
          name: "fetch",
          ready: false,
          restartCount: 2,
          image: "",
          imageID: "",
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: { terminated: { exitCode: 1, message } },
        },
      ],
    });

  it("surfaces the fetch's termination message when the model cannot be fetched", function () {
    const msg = "model fetch failed: GET https://models.example.com/m/model.json returned 404 Not Found";
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 0 }), pods: [fetchFailed(msg)], conflicts: [] };
    const m = md({ replicas: 1 });
    const c = cond(o, "ModelAvailable", m);
    assert.equal(c.status, "False");
    assert.equal(c.reason, "ModelFetchFailed");
    assert.equal(c.message, msg);
    assert.equal(
      cond(o, "Ready", m).message,
      "0/1 replicas ready: model fetch failed: GET https://models.example.com/m/model.json returned 404 Not Found",
    );
    assert.equal(cond(o, "Degraded", m).status, "False", "a fetch failure is a model problem, reported once");
  });

  it("calls a checksum mismatch by its name", function () {
    const o: Observed = {
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods: [fetchFailed("model fetch failed: sha256 mismatch: expected 00…, got 11…")],
      conflicts: [],
    };
    assert.equal(cond(o, "ModelAvailable").reason, "ChecksumMismatch");
  });

  it("is Degraded when the serving container crash loops, with its last words", function () {
    const crashing = pod("a", {
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [
        {
          name: "serve",
          ready: false,
          restartCount: 4,
          image: "",
          imageID: "",
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: { terminated: { exitCode: 1, message: "out of memory loading weights" } },
        },
      ],
    });
    const c = cond({ deployment: deployment({ replicas: 1, ready: 0 }), pods: [crashing], conflicts: [] }, "Degraded");
    assert.equal(c.status, "True");
    assert.equal(c.reason, "CrashLooping");
    assert.match(c.message, /crash looping \(4 restarts\): out of memory loading weights/);
  });

  const loadFailed = (state: "terminated" | "waiting", message: string, exitCode = 1) => {
    const terminated = { exitCode, message };
    return pod("a", {
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [
        {
          name: "serve",
          ready: false,
          restartCount: state === "terminated" ? 0 : 3,
          image: "",
          imageID: "",
          ...(state === "terminated"
            ? { state: { terminated } }
            : { state: { waiting: { reason: "CrashLoopBackOff" } }, lastState: { terminated } }),
        },
      ],
    });
  };

  it("surfaces the serving container's reason when the model fetched but cannot be loaded", function () {
    const msg =
      "model load failed: Failed to load the model from /models/model: Based on the provided shape, [3,3,3,16], the tensor should have 432 values but has 25";
    const m = md({ replicas: 1 });
    for (const state of ["terminated", "waiting"] as const) {
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 0 }),
        pods: [loadFailed(state, msg)],
        conflicts: [],
      };
      const c = cond(o, "ModelAvailable", m);
      assert.deepEqual([c.status, c.reason, c.message], ["False", "ModelLoadFailed", msg], state);
      assert.equal(cond(o, "Ready", m).message, `0/1 replicas ready: ${msg}`, state);
    }
    const looping: Observed = {
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods: [loadFailed("waiting", msg)],
      conflicts: [],
    };
    assert.equal(cond(looping, "Degraded", m).status, "False", "a load failure is a model problem, reported once");
  });

  it("does not call an exit a load failure unless the serving container says so", function () {
    const o = (pods: Observed["pods"]): Observed => ({
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods,
      conflicts: [],
    });
    for (const pods of [
      [loadFailed("terminated", "out of memory loading weights")],
      [loadFailed("terminated", "model load failed: but it exited 0", 0)],
    ]) {
      assert.equal(cond(o(pods), "ModelAvailable").reason, "ModelLoading");
    }
  });

  it("is Degraded and not Ready when a child with its name belongs to someone else", function () {
    const o: Observed = { deployment: undefined, pods: [], conflicts: [{ kind: "Service", name: "sentiment" }] };
    assert.equal(cond(o, "Degraded").reason, "ChildConflict");
    assert.match(
      cond(o, "Degraded").message,
      /Service ml\/sentiment exists and is not controlled by this ModelDeployment/,
    );
    assert.equal(cond(o, "Ready").reason, "ReconcileFailed");
  });

  it("keeps lastTransitionTime while a condition's status holds, and moves it when the status changes", function () {
    const m = md({ replicas: 1 });
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 1 }), pods: [readyPod("a")], conflicts: [] };
    m.status = computeStatus(m, o, new Date("2026-11-28T10:00:00Z")).status;
    const later = computeStatus(m, o, now).status;
    assert.equal(later.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime, "2026-11-28T10:00:00Z");
    assert.equal(statusChanged(m.status, later), false, "nothing changed, so nothing is written");
    const broken: Observed = { deployment: deployment({ replicas: 1, ready: 0 }), pods: [], conflicts: [] };
    const after = computeStatus(m, broken, now).status;
    assert.equal(after.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime, "2026-11-28T12:00:00Z");
    assert.equal(statusChanged(m.status, after), true);
  });

  it("records an Event on transitions only", function () {
    const m = md({ replicas: 1 });
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 1 }), pods: [readyPod("a")], conflicts: [] };
    const first = computeStatus(m, o, now);
    assert.deepEqual(
      first.events.map((e) => [e.type, e.reason]),
      [["Normal", "AllReplicasReady"]],
    );
    m.status = first.status;
    assert.deepEqual(computeStatus(m, o, now).events, []);
  });

  it("says plainly that no autoscaler runs yet, and leaves status.autoscaling to it", function () {
    const m = md({ autoscaling: { minReplicas: 2, maxReplicas: 4, metric: { target: 10 } } });
    const o: Observed = { deployment: deployment({ replicas: 2, ready: 2 }), pods: [], conflicts: [] };
    m.status = { autoscaling: { desiredReplicas: 2, reason: "written by a future autoscaler" } };
    const first = computeStatus(m, o, now).status;
    assert.equal(first.autoscaling, undefined);
    const scaling = first.conditions!.find((c) => c.type === "ScalingActive")!;
    assert.equal(scaling.status, "False");
    assert.equal(scaling.reason, "AutoscalerNotRunning");
    assert.match(scaling.message, /holding 2 replicas/);
    assert.equal(first.replicasSummary, "2/2");
    m.status = { ...first, autoscaling: { desiredReplicas: 2, reason: "written by a future autoscaler" } };
    assert.equal(statusChanged(m.status, computeStatus(m, o, now).status), false);
  });

  it("reports no ScalingActive condition for a fixed-size model", function () {
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 1 }), pods: [], conflicts: [] };
    assert.equal(
      computeStatus(md({ replicas: 1 }), o, now).status.conditions!.some((c) => c.type === "ScalingActive"),
      false,
    );
  });
});
