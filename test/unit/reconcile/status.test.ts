import assert from "node:assert/strict";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { computeStatus, statusChanged, type Observed } from "../../../operator/src/reconcile/status.ts";
import { Annotations } from "../../../operator/src/reconcile/labels.ts";
import { md } from "./fixtures.ts";

const now = new Date("2026-11-28T12:00:00Z");

/** The revision the spec asks for now, and a previous one. */
const current = "rev-current";
const previous = "rev-previous";
/** What the reconciler adds to every observation: the current template's hash; the autoscaler runs. */
const rev = { templateHash: current, autoscalerEnabled: true };

function deployment(opts: {
  replicas: number;
  ready: number;
  /** Pods of every revision (status.replicas); default `replicas`. */
  total?: number;
  updated?: number;
  available?: number;
  observed?: boolean;
  /** The template hash the Deployment in the cache carries (default: the current one). */
  template?: string;
}): V1Deployment {
  return {
    metadata: { name: "sentiment", generation: 2 },
    spec: {
      replicas: opts.replicas,
      selector: {},
      template: { metadata: { annotations: { [Annotations.templateHash]: opts.template ?? current } } },
    },
    status: {
      observedGeneration: opts.observed === false ? 1 : 2,
      replicas: opts.total ?? opts.replicas,
      readyReplicas: opts.ready,
      updatedReplicas: opts.updated ?? opts.replicas,
      availableReplicas: opts.available ?? opts.ready,
    },
  };
}

function pod(name: string, status: NonNullable<V1Pod["status"]>, revision = current): V1Pod {
  return { metadata: { name, annotations: { [Annotations.templateHash]: revision } }, status };
}

const readyPod = (name: string, revision = current) =>
  pod(
    name,
    {
      phase: "Running",
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [{ name: "serve", ready: true, restartCount: 0, image: "", imageID: "" }],
    },
    revision,
  );

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
      ...rev,
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
      ...rev,
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
      ...rev,
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
      cond({ deployment: deployment({ replicas: 1, ready: 0 }), pods: [pending], conflicts: [], ...rev }, "Scheduled")
        .reason,
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
    const o: Observed = {
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods: [fetchFailed(msg)],
      conflicts: [],
      ...rev,
    };
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
      ...rev,
    };
    assert.equal(cond(o, "ModelAvailable").reason, "ChecksumMismatch");
  });

  /** A serving container in CrashLoopBackOff after `restarts` exits like `terminated`. */
  const crashLoopingPod = (restarts: number, terminated: { exitCode: number; message?: string; reason?: string }) =>
    pod("a", {
      conditions: [{ type: "PodScheduled", status: "True" }],
      containerStatuses: [
        {
          name: "serve",
          ready: false,
          restartCount: restarts,
          image: "",
          imageID: "",
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: { terminated },
        },
      ],
    });

  it("is Degraded when the serving container crash loops, with its last words", function () {
    const crashing = crashLoopingPod(4, { exitCode: 1, message: "out of memory loading weights" });
    const c = cond(
      { deployment: deployment({ replicas: 1, ready: 0 }), pods: [crashing], conflicts: [], ...rev },
      "Degraded",
    );
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
        ...rev,
      };
      const c = cond(o, "ModelAvailable", m);
      assert.deepEqual([c.status, c.reason, c.message], ["False", "ModelLoadFailed", msg], state);
      assert.equal(cond(o, "Ready", m).message, `0/1 replicas ready: ${msg}`, state);
    }
    const looping: Observed = {
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods: [loadFailed("waiting", msg)],
      conflicts: [],
      ...rev,
    };
    assert.equal(cond(looping, "Degraded", m).status, "False", "a load failure is a model problem, reported once");
  });

  it("does not call an exit a load failure unless the serving container says so", function () {
    const o = (pods: Observed["pods"]): Observed => ({
      deployment: deployment({ replicas: 1, ready: 0 }),
      pods,
      conflicts: [],
      ...rev,
    });
    for (const pods of [
      [loadFailed("terminated", "out of memory loading weights")],
      [loadFailed("terminated", "model load failed: but it exited 0", 0)],
    ]) {
      assert.equal(cond(o(pods), "ModelAvailable").reason, "ModelLoading");
    }
  });

  it("is Degraded and not Ready when a child with its name belongs to someone else", function () {
    const o: Observed = {
      deployment: undefined,
      pods: [],
      conflicts: [{ kind: "Service", name: "sentiment" }],
      ...rev,
    };
    assert.equal(cond(o, "Degraded").reason, "ChildConflict");
    assert.match(
      cond(o, "Degraded").message,
      /Service ml\/sentiment exists and is not controlled by this ModelDeployment/,
    );
    assert.equal(cond(o, "Ready").reason, "ReconcileFailed");
  });

  it("keeps lastTransitionTime while a condition's status holds, and moves it when the status changes", function () {
    const m = md({ replicas: 1 });
    const o: Observed = {
      deployment: deployment({ replicas: 1, ready: 1 }),
      pods: [readyPod("a")],
      conflicts: [],
      ...rev,
    };
    m.status = computeStatus(m, o, new Date("2026-11-28T10:00:00Z")).status;
    const later = computeStatus(m, o, now).status;
    assert.equal(later.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime, "2026-11-28T10:00:00Z");
    assert.equal(statusChanged(m.status, later), false, "nothing changed, so nothing is written");
    const broken: Observed = { deployment: deployment({ replicas: 1, ready: 0 }), pods: [], conflicts: [], ...rev };
    const after = computeStatus(m, broken, now).status;
    assert.equal(after.conditions!.find((c) => c.type === "Ready")!.lastTransitionTime, "2026-11-28T12:00:00Z");
    assert.equal(statusChanged(m.status, after), true);
  });

  it("records an Event on transitions only", function () {
    const m = md({ replicas: 1 });
    const o: Observed = {
      deployment: deployment({ replicas: 1, ready: 1 }),
      pods: [readyPod("a")],
      conflicts: [],
      ...rev,
    };
    const first = computeStatus(m, o, now);
    assert.deepEqual(
      first.events.map((e) => [e.type, e.reason]),
      [["Normal", "AllReplicasReady"]],
    );
    m.status = first.status;
    assert.deepEqual(computeStatus(m, o, now).events, []);
  });

  describe("rollouts (kubectl rollout status semantics)", function () {
    const pendingPod = (name: string, message: string) =>
      pod(name, { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", message }] });

    it("is not Ready while the new revision cannot be scheduled and the previous one still serves", function () {
      const message = "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.";
      // A 1-replica CPU model (maxSurge 1): the new pod is Pending, the old one still Ready.
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1, total: 2, updated: 1, available: 1 }),
        pods: [readyPod("old", previous), pendingPod("new", message)],
        conflicts: [],
        ...rev,
      };
      const m = md({ replicas: 1 });
      const ready = cond(o, "Ready", m);
      assert.deepEqual([ready.status, ready.reason], ["False", "RolloutInProgress"]);
      assert.match(
        ready.message,
        /0\/1 replicas of it ready, 1 of the previous revision still serving: 1\/2 pods cannot be scheduled: 0\/4 nodes/,
      );
      const model = cond(o, "ModelAvailable", m);
      assert.deepEqual([model.status, model.reason], ["True", "PreviousRevisionServing"]);
      assert.equal(cond(o, "Progressing", m).status, "True");
    });

    it("is not Ready while the new revision's model fetch fails, and says the previous revision still serves", function () {
      const failing = pod("new", {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "True" }],
        initContainerStatuses: [
          {
            name: "fetch",
            ready: false,
            restartCount: 1,
            image: "",
            imageID: "",
            state: { waiting: { reason: "CrashLoopBackOff" } },
            lastState: {
              terminated: { exitCode: 1, message: "model fetch failed: GET http://x/model.json returned 404" },
            },
          },
        ],
      });
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1, total: 2, updated: 1, available: 1 }),
        pods: [readyPod("old", previous), failing],
        conflicts: [],
        ...rev,
      };
      const m = md({ replicas: 1 });
      assert.deepEqual([cond(o, "Ready", m).status, cond(o, "Ready", m).reason], ["False", "RolloutInProgress"]);
      assert.match(cond(o, "Ready", m).message, /returned 404/);
      const model = cond(o, "ModelAvailable", m);
      assert.deepEqual([model.status, model.reason], ["False", "ModelFetchFailed"]);
      assert.match(model.message, /returned 404; the previous revision still serves on 1 replica$/);
    });

    it("is not Ready while the cached Deployment still carries the previous template", function () {
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1, template: previous }),
        pods: [readyPod("old", previous)],
        conflicts: [],
        ...rev,
      };
      assert.equal(cond(o, "Ready", md({ replicas: 1 })).status, "False");
    });

    it("is not Ready while the Deployment is sized for fewer replicas than the spec asks for", function () {
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1 }),
        pods: [readyPod("a")],
        conflicts: [],
        ...rev,
      };
      assert.equal(cond(o, "Ready", md({ replicas: 2 })).status, "False");
    });

    it("is not Ready while the new revision crash loops, and says so with its last words", function () {
      const crashing = pod("new", {
        conditions: [{ type: "PodScheduled", status: "True" }],
        containerStatuses: [
          {
            name: "serve",
            ready: false,
            restartCount: 3,
            image: "",
            imageID: "",
            state: { waiting: { reason: "CrashLoopBackOff" } },
            lastState: { terminated: { exitCode: 137, message: "Killed: out of memory" } },
          },
        ],
      });
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1, total: 2, updated: 1, available: 1 }),
        pods: [readyPod("old", previous), crashing],
        conflicts: [],
        ...rev,
      };
      const m = md({ replicas: 1 });
      const ready = cond(o, "Ready", m);
      assert.deepEqual([ready.status, ready.reason], ["False", "RolloutInProgress"]);
      assert.match(ready.message, /1 of the previous revision still serving: container serve is crash looping$/);
      assert.deepEqual(
        [cond(o, "Degraded", m).reason, cond(o, "ModelAvailable", m).reason],
        ["CrashLooping", "PreviousRevisionServing"],
      );
    });

    it("is not Ready when the rollout passed its progress deadline, quoting the Deployment", function () {
      const d = deployment({ replicas: 1, ready: 1, total: 2, updated: 1, available: 1 });
      const deadline = 'ReplicaSet "x-7c9" has timed out progressing.';
      d.status!.conditions = [
        { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: deadline },
      ];
      const starting = pod("new", { conditions: [{ type: "PodScheduled", status: "True" }] });
      const o: Observed = { deployment: d, pods: [readyPod("old", previous), starting], conflicts: [], ...rev };
      const m = md({ replicas: 1 });
      const ready = cond(o, "Ready", m);
      assert.deepEqual([ready.status, ready.reason], ["False", "RolloutInProgress"]);
      assert.ok(ready.message.endsWith(deadline), ready.message);
      assert.deepEqual(
        [cond(o, "Progressing", m).status, cond(o, "Progressing", m).reason],
        ["False", "ProgressDeadlineExceeded"],
      );
    });

    it("is Ready once no pod of the previous revision remains", function () {
      const o: Observed = {
        deployment: deployment({ replicas: 1, ready: 1 }),
        pods: [readyPod("new")],
        conflicts: [],
        ...rev,
      };
      assert.equal(cond(o, "Ready", md({ replicas: 1 })).status, "True");
    });
  });

  describe("autoscaled objects", function () {
    const autoscaled = (status?: NonNullable<ReturnType<typeof md>["status"]>["autoscaling"]) => {
      const m = md({ autoscaling: { minReplicas: 1, maxReplicas: 5, metric: { target: 10 } } });
      if (status) m.status = { autoscaling: status };
      return m;
    };
    const stable = {
      mode: "Stable" as const,
      desiredReplicas: 3,
      reason: "25 req/s per replica over 60s (target 10 req/s): 3 replicas",
    };

    it("is Ready at minReplicas while replicas the autoscaler added wait for GPUs, and says so in ScalingLimited", function () {
      const message = "0/4 nodes are available: 3 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint.";
      const o: Observed = {
        deployment: deployment({ replicas: 3, ready: 1, available: 1 }),
        pods: [
          readyPod("a"),
          pod("b", { phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", message }] }),
        ],
        conflicts: [],
        ...rev,
      };
      const m = autoscaled(stable);
      const ready = cond(o, "Ready", m);
      assert.deepEqual([ready.status, ready.message], ["True", "1/3 replicas ready (autoscaled: 2 more on the way)"]);
      const limited = cond(o, "ScalingLimited", m);
      assert.deepEqual([limited.status, limited.reason], ["True", "WaitingForCapacity"]);
      assert.match(limited.message, /2 of 3 desired replicas not ready: .*Insufficient nvidia\.com\/gpu/);
      assert.equal(cond(o, "Scheduled", m).reason, "InsufficientGPU");
      assert.equal(cond(o, "Progressing", m).reason, "RolloutComplete", "a scale that waits is not a rollout");
    });

    it("stays Ready while the Deployment follows a scale the autoscaler decided (a scale is not a rollout)", function () {
      // The autoscaler just asked for 4; the cached Deployment is still sized for 3, or has 4 pods for 3 replicas.
      const up: Observed = { deployment: deployment({ replicas: 3, ready: 3 }), pods: [], conflicts: [], ...rev };
      const m = autoscaled({ ...stable, desiredReplicas: 4 });
      assert.deepEqual(
        [cond(up, "Ready", m).status, cond(up, "Ready", m).message],
        ["True", "3/4 replicas ready (autoscaled: 1 more on the way)"],
      );
      const down: Observed = { deployment: deployment({ replicas: 4, ready: 4 }), pods: [], conflicts: [], ...rev };
      const d = autoscaled({ ...stable, desiredReplicas: 3 });
      assert.deepEqual([cond(down, "Ready", d).status, cond(down, "Ready", d).message], ["True", "3/3 replicas ready"]);
      assert.equal(computeStatus(d, down, now).status.replicasSummary, "3/3");
      // A fixed size is the spec: until the Deployment has it, the object is not Ready.
      assert.equal(cond(up, "Ready", md({ replicas: 4 })).status, "False");
    });

    it("says the autoscaler acts, in its own words, and when it is capped at maxReplicas", function () {
      const o: Observed = { deployment: deployment({ replicas: 3, ready: 3 }), pods: [], conflicts: [], ...rev };
      const active = cond(o, "ScalingActive", autoscaled(stable));
      assert.deepEqual([active.status, active.reason, active.message], ["True", "MetricAvailable", stable.reason]);
      assert.equal(cond(o, "ScalingLimited", autoscaled(stable)).reason, "DesiredWithinRange");
      const capped = autoscaled({ ...stable, desiredReplicas: 5, limitedBy: "MaxReplicas", reason: "wants 9, capped" });
      const limited = cond({ ...o, deployment: deployment({ replicas: 5, ready: 5 }) }, "ScalingLimited", capped);
      assert.deepEqual(
        [limited.status, limited.reason, limited.message],
        ["True", "TooManyReplicas", "wants 9, capped"],
      );
    });

    it("says why it holds replicas when the metric cannot be read", function () {
      const o: Observed = { deployment: deployment({ replicas: 3, ready: 3 }), pods: [], conflicts: [], ...rev };
      const holding = autoscaled({
        mode: "Holding",
        desiredReplicas: 3,
        holdingReason: "PrometheusUnreachable",
        holdingSince: "2026-11-28T11:59:00Z",
        reason: "Holding 3 replicas since 2026-11-28T11:59:00Z: Prometheus at http://p:9090 is unreachable",
      });
      const c = cond(o, "ScalingActive", holding);
      assert.deepEqual([c.status, c.reason], ["False", "PrometheusUnreachable"]);
      assert.match(c.message, /Holding 3 replicas since/);
      assert.ok(
        computeStatus(holding, o, now).events.some((e) => e.type === "Warning" && e.reason === "PrometheusUnreachable"),
      );
    });

    it("says the autoscaler has not decided yet, or that it does not run without Prometheus", function () {
      const o: Observed = { deployment: deployment({ replicas: 1, ready: 1 }), pods: [], conflicts: [], ...rev };
      assert.equal(cond(o, "ScalingActive", autoscaled()).reason, "AwaitingMetrics");
      const off = cond({ ...o, autoscalerEnabled: false }, "ScalingActive", autoscaled(stable));
      assert.deepEqual([off.status, off.reason], ["False", "PrometheusNotConfigured"]);
      assert.match(off.message, /--prometheus-url/);
    });

    it("leaves status.autoscaling to the autoscaler (its own field manager)", function () {
      const o: Observed = { deployment: deployment({ replicas: 3, ready: 3 }), pods: [], conflicts: [], ...rev };
      const m = autoscaled(stable);
      const first = computeStatus(m, o, now).status;
      assert.equal(first.autoscaling, undefined);
      assert.equal(first.replicasSummary, "3/3");
      m.status = { ...first, autoscaling: stable };
      assert.equal(statusChanged(m.status, computeStatus(m, o, now).status), false);
    });
  });

  it("says Unschedulable, not InsufficientGPU, when the scheduler only names the GPU taint", function () {
    const message =
      "0/4 nodes are available: 2 node(s) had untolerated taint {nvidia.com/gpu: present}, 2 node(s) didn't match Pod's node affinity/selector.";
    const pending = pod("a", { conditions: [{ type: "PodScheduled", status: "False", message }] });
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 0 }), pods: [pending], conflicts: [], ...rev };
    assert.equal(cond(o, "Scheduled").reason, "Unschedulable");
  });

  it("names a missing credentials Secret, quoting the kubelet", function () {
    const waiting = pod("a", {
      conditions: [{ type: "PodScheduled", status: "True" }],
      initContainerStatuses: [
        {
          name: "fetch",
          ready: false,
          restartCount: 0,
          image: "",
          imageID: "",
          state: { waiting: { reason: "CreateContainerConfigError", message: 'secret "model-store" not found' } },
        },
      ],
    });
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 0 }), pods: [waiting], conflicts: [], ...rev };
    const c = cond(o, "ModelAvailable");
    assert.deepEqual([c.status, c.reason], ["False", "CredentialsSecretMissing"]);
    assert.match(c.message, /container fetch: secret "model-store" not found/);
    assert.match(cond(o, "Ready").message, /secret "model-store" not found/);
  });

  it("reports each kind of refused child under its own Degraded reason", function () {
    for (const [kind, reason] of [
      ["invalid", "InvalidSpec"],
      ["forbidden", "ApplyForbidden"],
      ["failed", "ApplyFailed"],
    ] as const) {
      const o: Observed = {
        deployment: undefined,
        pods: [],
        conflicts: [],
        applyError: { kind, message: `The API server said no (${kind})` },
        ...rev,
      };
      assert.deepEqual([cond(o, "Degraded").status, cond(o, "Degraded").reason], ["True", reason]);
      assert.deepEqual(
        [cond(o, "Ready").reason, cond(o, "Ready").message],
        ["ReconcileFailed", `The API server said no (${kind})`],
      );
    }
  });

  it("is Stalled, in the cause's words, exactly while a human must act (kstatus reads it as Failed)", function () {
    const crashLooping = crashLoopingPod(3, { exitCode: 137, reason: "Killed" });
    const pendingForGpus = pod("a", {
      phase: "Pending",
      conditions: [
        {
          type: "PodScheduled",
          status: "False",
          message: "0/4 nodes are available: 3 Insufficient nvidia.com/gpu.",
        },
      ],
    });
    const pastDeadline = deployment({ replicas: 1, ready: 0 });
    pastDeadline.status!.conditions = [
      {
        type: "Progressing",
        status: "False",
        reason: "ProgressDeadlineExceeded",
        message: 'ReplicaSet "sentiment-abc" has timed out progressing.',
      },
    ];
    const rolling = deployment({ replicas: 1, ready: 1, total: 2, updated: 1, available: 1 });
    const cases: [string, Omit<Observed, keyof typeof rev>, [string, string]][] = [
      [
        "ready",
        { deployment: deployment({ replicas: 1, ready: 1 }), pods: [readyPod("a")], conflicts: [] },
        ["False", "AsExpected"],
      ],
      [
        "rolling",
        { deployment: rolling, pods: [readyPod("a", previous), pod("b", { phase: "Pending" })], conflicts: [] },
        ["False", "AsExpected"],
      ],
      [
        "waiting for GPUs",
        { deployment: deployment({ replicas: 1, ready: 0 }), pods: [pendingForGpus], conflicts: [] },
        ["False", "AsExpected"],
      ],
      [
        "crash looping",
        { deployment: deployment({ replicas: 1, ready: 0 }), pods: [crashLooping], conflicts: [] },
        ["True", "CrashLooping"],
      ],
      [
        "a child conflict",
        { deployment: undefined, pods: [], conflicts: [{ kind: "Deployment", name: "sentiment" }] },
        ["True", "ChildConflict"],
      ],
      [
        "fetch failed",
        {
          deployment: deployment({ replicas: 1, ready: 0 }),
          pods: [fetchFailed("model fetch failed: GET … returned 404 Not Found")],
          conflicts: [],
        },
        ["True", "ModelFetchFailed"],
      ],
      [
        "load failed",
        {
          deployment: deployment({ replicas: 1, ready: 0 }),
          pods: [loadFailed("waiting", "model load failed: bad weights")],
          conflicts: [],
        },
        ["True", "ModelLoadFailed"],
      ],
      [
        "past the progress deadline",
        { deployment: pastDeadline, pods: [pendingForGpus], conflicts: [] },
        ["True", "ProgressDeadlineExceeded"],
      ],
    ];
    const m = md({ replicas: 1 });
    for (const [what, observed, want] of cases) {
      const o = { ...observed, ...rev };
      const c = cond(o, "Stalled", m);
      assert.deepEqual([c.status, c.reason], want, what);
      if (c.status === "True") {
        // The cause's own condition says the same, so the two never tell different stories.
        const cause = computeStatus(m, o, now).status.conditions!.find(
          (x) => x.type !== "Stalled" && x.reason === c.reason,
        );
        assert.equal(cause?.message, c.message, what);
      }
    }
  });

  it("reports no ScalingActive condition for a fixed-size model", function () {
    const o: Observed = { deployment: deployment({ replicas: 1, ready: 1 }), pods: [], conflicts: [], ...rev };
    assert.equal(
      computeStatus(md({ replicas: 1 }), o, now).status.conditions!.some((c) => c.type === "ScalingActive"),
      false,
    );
  });
});
