/**
 * Admission equals run time, against the real API server: every generated ModelDeployment
 * (test/unit/api/admission-cases.ts, seeded) is created with dryRun=All and strict field validation.
 * For each one the API server accepts, the pod's fetch and serve steps must accept the configuration
 * the operator renders, and the Deployment the operator builds (desiredDeployment) and the Pod its
 * ReplicaSet would create must pass server-side dry-runs without a warning, and read back without
 * drift. For each one it refuses, the message must name the field, and where the serving image
 * shares the grammar, the image must refuse it too. The runtime validator must agree with the API
 * server on every case.
 */
import assert from "node:assert/strict";
import { Agent, request, type RequestOptions } from "node:https";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import {
  GROUP,
  PLURAL,
  VERSION,
  validateModelDeployment,
  withDefaults,
  type ModelDeployment,
} from "../../../operator/src/api/index.ts";
import { classifyChild, withDesiredHash } from "../../../operator/src/reconcile/classify.ts";
import type { Desired } from "../../../operator/src/reconcile/labels.ts";
import { installCrd } from "../../testbed/operator.ts";
import { useTestbed, type Testbed } from "../../testbed/index.ts";
import {
  admissionCases,
  inNamespace,
  runtimeVerdict,
  type AdmissionCase,
  type RuntimeVerdict,
} from "../../unit/api/admission-cases.ts";

interface Answer {
  status: number;
  body: { message?: string } & Record<string, unknown>;
  /** The API server's Warning headers (a fractional memory, an invalid preferred label value). */
  warnings: string[];
}

/** POSTs `body` to the API server, keeping the Warning headers that the typed clients drop. */
async function apiClient(tb: Testbed): Promise<(path: string, body: unknown) => Promise<Answer>> {
  const server = tb.kc.getCurrentCluster()?.server;
  assert.ok(server !== undefined);
  const tls: RequestOptions = {};
  await tb.kc.applyToHTTPSOptions(tls);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  return (path, body) =>
    new Promise((resolve, reject) => {
      const req = request(
        new URL(path, server),
        { ...tls, agent, method: "POST", headers: { "content-type": "application/json", accept: "application/json" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const warnings: string[] = [];
            for (let i = 0; i < res.rawHeaders.length; i += 2) {
              if (res.rawHeaders[i]?.toLowerCase() === "warning") warnings.push(res.rawHeaders[i + 1] ?? "");
            }
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Answer["body"],
              warnings,
            });
          });
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
}

/** Requests in flight at once: enough to keep the API server busy, few enough for 2 shared cores. */
const CONCURRENCY = 6;
const DRY_RUN = "dryRun=All&fieldValidation=Strict";

interface Outcome {
  readonly md: ModelDeployment;
  readonly api: Answer;
  /** Only when the API server admitted the ModelDeployment. */
  readonly admitted?: {
    readonly verdict: RuntimeVerdict;
    readonly desired: Desired<V1Deployment>;
    readonly deployment: Answer;
    readonly pod: Answer;
  };
}

async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

/** The Pod the Deployment's ReplicaSet would create from its template. */
function podOf(d: V1Deployment, namespace: string): V1Pod {
  const t = d.spec!.template;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `${d.metadata!.name!}-pod`,
      namespace,
      labels: t.metadata?.labels ?? {},
      annotations: t.metadata?.annotations ?? {},
    },
    spec: t.spec!,
  };
}

describe("admission equals run time, on a real API server", function () {
  const cases = admissionCases();
  const outcomes = new Map<AdmissionCase, Outcome>();
  let tb: Testbed;
  let priorityClasses: string[] = [];

  before(async function () {
    this.timeout(600_000);
    tb = await useTestbed("api");
    await installCrd(tb);
    const ns = await tb.createNamespace("admission");
    // Pods need their ServiceAccount; without a controller-manager nobody else creates it.
    await tb.core
      .createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "default" } } })
      .catch((e: unknown) => {
        if (!/AlreadyExists|409/.test(String(e))) throw e;
      });
    // A Pod may only name a PriorityClass that exists: make the ones the admitted cases name.
    priorityClasses = [
      ...new Set(
        cases
          .map(
            (c) => (c.manifest.spec as { scheduling?: { priorityClassName?: string } }).scheduling?.priorityClassName,
          )
          .filter((p): p is string => p !== undefined && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p) && p.length <= 253),
      ),
    ];
    for (const name of priorityClasses) {
      await tb.kubectl(["create", "priorityclass", name, "--value=1000"]);
    }
    const post = await apiClient(tb);
    const started = performance.now();
    const results = await pool(cases, CONCURRENCY, async (c): Promise<Outcome> => {
      const md = inNamespace(c, ns);
      const api = await post(`/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}?${DRY_RUN}`, md);
      if (api.status !== 201) return { md, api };
      const stored = api.body as unknown as ModelDeployment;
      const verdict = runtimeVerdict(stored);
      // As the reconciler applies it: with the hash of what it wants stamped on it.
      const desired = withDesiredHash(verdict.deployment);
      const deployment = await post(`/apis/apps/v1/namespaces/${ns}/deployments?${DRY_RUN}`, desired);
      const pod = await post(`/api/v1/namespaces/${ns}/pods?${DRY_RUN}`, podOf(desired, ns));
      return { md, api, admitted: { verdict, desired, deployment, pod } };
    });
    cases.forEach((c, i) => outcomes.set(c, results[i]!));
    const admitted = results.filter((r) => r.admitted !== undefined).length;
    console.log(
      `      ${cases.length} cases, ${admitted} admitted, ${cases.length - admitted} refused, ` +
        `in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  after(async () => {
    for (const name of priorityClasses) await tb.kubectl(["delete", "priorityclass", name, "--ignore-not-found"]);
  });

  for (const c of cases) {
    it(c.what, () => {
      const { md, api, admitted } = outcomes.get(c)!;
      const message = api.body.message ?? "";
      const validator = validateModelDeployment(md);
      assert.equal(
        validator.ok,
        admitted !== undefined,
        `the API server ${admitted ? "admitted" : `refused (${message})`} it, the runtime validator ` +
          (validator.ok ? "admits" : `refuses: ${JSON.stringify(validator.errors)}`),
      );
      if (admitted === undefined) {
        assert.ok(message.includes(c.field), `refused without naming ${c.field}: ${message}`);
        if (c.owned !== undefined) {
          const v = runtimeVerdict(withDefaults(md));
          if (c.owned === "fetch") assert.notEqual(v.fetch, undefined, "the API server refuses it, fetch accepts it");
          else assert.notDeepEqual(v.serve, [], "the API server refuses it, serve accepts it");
        }
        return;
      }
      const { verdict, desired, deployment, pod } = admitted;
      assert.equal(verdict.fetch, undefined, "admitted, but fetch refuses it");
      assert.deepEqual(verdict.serve, [], "admitted, but serve refuses it");
      assert.equal(deployment.status, 201, `admitted, but the Deployment is refused: ${deployment.body.message ?? ""}`);
      assert.deepEqual(deployment.warnings, [], "admitted, but the Deployment draws warnings");
      assert.equal(pod.status, 201, `admitted, but its Pod is refused: ${pod.body.message ?? ""}`);
      assert.deepEqual(pod.warnings, [], "admitted, but its Pod draws warnings");
      // What the API server stores (quantities normalised, defaults added) is no drift from what was built.
      const stored = deployment.body as unknown as V1Deployment;
      assert.deepEqual(classifyChild(api.body as unknown as ModelDeployment, desired, stored), {
        action: "none",
      });
    });
  }
});
