import type { Condition, ModelDeployment, ModelDeploymentSpec } from "../../../operator/src/api/index.ts";
import { GROUP, PLURAL, VERSION } from "../../../operator/src/api/index.ts";
import type { Testbed } from "../../testbed/index.ts";

export function manifest(name: string, spec: Partial<ModelDeploymentSpec> & Pick<ModelDeploymentSpec, "model">) {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: "ModelDeployment", metadata: { name }, spec };
}

export const model = { uri: "https://models.example.com/sentiment/3/model.json", format: "tfjs-graph" as const };

export async function createMd(tb: Testbed, namespace: string, body: object): Promise<ModelDeployment> {
  return (await tb.custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    body,
  })) as ModelDeployment;
}

export async function readMd(tb: Testbed, namespace: string, name: string): Promise<ModelDeployment> {
  return (await tb.custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: PLURAL,
    name,
  })) as ModelDeployment;
}

/** JSON merge patch of a ModelDeployment through kubectl (as a user would). */
export async function patchMd(tb: Testbed, namespace: string, name: string, patch: object): Promise<void> {
  const r = await tb.kubectl(["-n", namespace, "patch", "md", name, "--type=merge", "-p", JSON.stringify(patch)]);
  if (r.code !== 0) throw new Error(`kubectl patch failed: ${r.stderr}`);
}

export function condition(md: ModelDeployment, type: string): Condition | undefined {
  return md.status?.conditions?.find((c) => c.type === type);
}

/** Waits until condition `type` has `status` for the object's current generation; returns the object. */
export async function waitForCondition(
  tb: Testbed,
  namespace: string,
  name: string,
  type: string,
  status: "True" | "False" | "Unknown",
  timeoutMs = 60_000,
  extra: (md: ModelDeployment) => boolean = () => true,
): Promise<ModelDeployment> {
  return tb.waitFor(
    `${namespace}/${name} ${type}=${status}`,
    async () => {
      const md = await readMd(tb, namespace, name);
      const c = condition(md, type);
      return md.status?.observedGeneration === md.metadata.generation && c?.status === status && extra(md) && md;
    },
    timeoutMs,
  );
}

/**
 * The JSON of `kubectl events` for `what` (e.g. "modeldeployment/vision"; every Event of the
 * namespace when undefined) once it matches every pattern: the operator writes Events in the
 * background, so they may land just after the status a test waited for.
 */
export async function waitForEvents(
  tb: Testbed,
  namespace: string,
  what: string | undefined,
  patterns: readonly RegExp[],
  timeoutMs = 15_000,
): Promise<string> {
  let last = "";
  const args = what
    ? ["-n", namespace, "events", "--for", what, "-o", "json"]
    : ["-n", namespace, "events", "-o", "json"];
  try {
    return await tb.waitFor(
      `Events of ${what ?? namespace} matching ${patterns.join(", ")}`,
      async () => {
        last = (await tb.kubectl(args)).stdout;
        return patterns.every((p) => p.test(last)) && last;
      },
      timeoutMs,
    );
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}; the last answer was:\n${last}`, {
      cause: err,
    });
  }
}

/** Writes (not reads) by `user` since `since`, leaving out the leader election Lease renewals. */
export async function writesBy(tb: Testbed, user: string, since: Date) {
  const events = await tb.auditEvents({
    user,
    since,
    verbs: ["create", "update", "patch", "delete", "deletecollection"],
  });
  return events.filter((e) => e.objectRef?.resource !== "leases");
}
