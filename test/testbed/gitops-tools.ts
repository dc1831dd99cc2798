/**
 * The GitOps tools' own code, as test bed binaries: Argo CD's Lua VM (gopher-lua, running a
 * health.lua the way Argo CD does) and Flux's status library (sigs.k8s.io/cli-utils kstatus). Both
 * are small Go programs of ours (test/testbed/go/) built by build.sh from the Go module proxy into
 * the test bed's cache, once per module version and source.
 */
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { testbedDir } from "./paths.ts";

export type GitopsTool = "argocd-lua-health" | "kstatus";

/** Argo CD's health codes. */
export type ArgoHealth = "Healthy" | "Progressing" | "Degraded" | "Suspended" | "Missing" | "Unknown";
/** kstatus' statuses. */
export type KstatusStatus = "Current" | "InProgress" | "Failed" | "Terminating" | "Unknown" | "NotFound";

export interface Verdict<S extends string> {
  status: S;
  message: string;
}

const built = new Map<GitopsTool, string>();

/** The tool's binary, built first if this version of it is not in the cache. */
export function gitopsTool(tool: GitopsTool): string {
  const cached = built.get(tool);
  if (cached) return cached;
  const r = spawnSync("bash", [join(testbedDir, "build.sh"), tool], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building ${tool} failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
  const bin = join(r.stdout.trim().split("\n").pop()!, tool);
  built.set(tool, bin);
  return bin;
}

/** Runs a tool over objects (one JSON value each on stdin); one verdict per object, in order. */
function run<S extends string>(tool: GitopsTool, args: string[], objects: readonly object[]): Promise<Verdict<S>[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(gitopsTool(tool), args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${tool} failed: ${err.message}\n${stderr}`));
        return;
      }
      const results = stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Verdict<S> & { error?: string });
      const failed = results.find((r) => r.error !== undefined);
      if (failed) reject(new Error(`${tool}: ${failed.error!}`));
      else if (results.length !== objects.length)
        reject(new Error(`${tool} gave ${results.length} verdicts for ${objects.length} objects`));
      else resolve(results.map((r) => ({ status: r.status, message: r.message ?? "" })));
    });
    child.stdin!.end(objects.map((o) => JSON.stringify(o)).join("\n"));
  });
}

/**
 * Argo CD's verdict on each object from `script` (a health.lua): without `openLibs` as a
 * resource.customizations entry runs by default, with it as Argo CD runs its built-in checks.
 */
export function argoHealth(
  script: string,
  objects: readonly object[],
  opts: { openLibs: boolean },
): Promise<Verdict<ArgoHealth>[]> {
  return run("argocd-lua-health", [...(opts.openLibs ? ["-open-libs"] : []), script], objects);
}

/** kstatus' verdict on each object, as Flux's health checks compute it. */
export function kstatus(objects: readonly object[]): Promise<Verdict<KstatusStatus>[]> {
  return run("kstatus", [], objects);
}
