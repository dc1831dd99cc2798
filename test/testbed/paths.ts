/**
 * Where the test bed keeps its binaries and runs: binaries in a version-keyed cache directory
 * (shared by every checkout on the machine), runs under the repository's `.testbed/` directory.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const testbedDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(testbedDir, "../..");
export const runsRoot = join(repoRoot, ".testbed");

/** Versions pinned in versions.env (the single place they are written). */
export function readVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(testbedDir, "versions.env"), "utf8").split("\n")) {
    const m = /^([A-Z_]+)=(\S+)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export function cacheRoot(): string {
  return (
    process.env.MAAS_TESTBED_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "maas-testbed")
  );
}

export const binaryNames = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
  "helm",
] as const;
export type BinaryName = (typeof binaryNames)[number];

/**
 * Returns the directory holding every test bed binary, building what is missing first (the
 * build script skips what is cached and prints its progress on stderr).
 */
export function ensureBinaries(): string {
  const bin = join(cacheRoot(), "bin");
  const versions = readVersions();
  const versionOf: Record<BinaryName, string | undefined> = {
    etcd: versions.ETCD_VERSION,
    "kube-apiserver": versions.KUBERNETES_VERSION,
    "kube-controller-manager": versions.KUBERNETES_VERSION,
    "kube-scheduler": versions.KUBERNETES_VERSION,
    kubectl: versions.KUBERNETES_VERSION,
    kwok: versions.KWOK_VERSION,
    helm: `${versions.HELM_VERSION ?? "?"}-${versions.HELM_BUILD ?? "?"}`,
  };
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const missing = binaryNames.filter((b) => !existsSync(join(bin, `${b}-${versionOf[b] ?? "?"}-linux-${arch}`)));
  if (missing.length > 0) {
    process.stderr.write(`[testbed] building missing binaries: ${missing.join(", ")}\n`);
    const r = spawnSync("bash", [join(testbedDir, "build.sh")], { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) throw new Error(`test bed build failed (exit ${r.status ?? r.signal}); see the output above`);
  }
  return bin;
}

/** Whether `file` exists (any error reading it counts as no). */
export const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** A short cache key: a hash of a list of parts (each hashed on its own, so no two lists run together alike). */
export function key(parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(createHash("sha256").update(part).digest());
  return hash.digest("hex").slice(0, 16);
}
