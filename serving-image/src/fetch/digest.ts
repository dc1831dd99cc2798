/**
 * What `spec.model.sha256` (MAAS_MODEL_SHA256) covers: the whole fetched model directory, as the
 * sha256 of a canonical manifest. For every regular file under the directory, one line
 *
 *     <lowercase hex sha256 of the file>  <path relative to the directory, "/"-separated>\n
 *
 * (two spaces, as `sha256sum` prints), lines sorted by the path's UTF-8 bytes; the digest is the
 * sha256 of those lines concatenated. So it covers model.json and every weight shard, their names and
 * their contents, and a user computes it with coreutils:
 *
 *     cd model-dir && find -L . -type f | sed 's|^\./||' | LC_ALL=C sort | xargs -d '\n' sha256sum | sha256sum
 *
 * or with `node serving-image/src/fetch/cli.ts digest <dir>`. A single-file model is a directory of one file.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

export interface ManifestEntry {
  /** "/"-separated path relative to the model directory. */
  readonly path: string;
  /** Lowercase hex sha256 of the file's bytes. */
  readonly sha256: string;
}

/** The canonical manifest text for a set of files (pure; order of the input does not matter). */
export function canonicalManifest(entries: readonly ManifestEntry[]): string {
  return [...entries]
    .sort((a, b) => Buffer.compare(Buffer.from(a.path, "utf8"), Buffer.from(b.path, "utf8")))
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join("");
}

/** The model digest for a set of files: sha256 of their canonical manifest, lowercase hex (pure). */
export function manifestDigest(entries: readonly ManifestEntry[]): string {
  return createHash("sha256").update(canonicalManifest(entries), "utf8").digest("hex");
}

/** Whether s is a 64-character hex sha256 (either case). */
export function isSha256Hex(s: string): boolean {
  return /^[0-9a-fA-F]{64}$/.test(s);
}

/** Hashes every regular file under dir (recursively) and returns the manifest entries. */
export async function hashDirectory(dir: string): Promise<ManifestEntry[]> {
  const entries: ManifestEntry[] = [];
  for (const rel of await listFiles(dir)) {
    entries.push({ path: rel, sha256: await hashFile(join(dir, ...rel.split("/"))) });
  }
  return entries;
}

/** The model digest of a directory on disk, as defined at the top of this module. */
export async function digestDirectory(dir: string): Promise<string> {
  return manifestDigest(await hashDirectory(dir));
}

/**
 * "/"-separated relative paths of the regular files under dir, recursively, following symlinks as
 * fetch does when it copies a directory (so `maas-serving digest` of a source directory with links
 * gives the digest fetch computes); other special files and a lost+found at the root are left out.
 */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > 32) throw new Error(`directory ${abs} is nested more than 32 levels deep`);
    for (const name of await readdir(abs)) {
      if (rel === "" && name === "lost+found") continue; // as fetch does (sources.ts)
      const childRel = rel === "" ? name : `${rel}/${name}`;
      const st = await stat(join(abs, name));
      if (st.isDirectory()) await walk(join(abs, name), childRel, depth + 1);
      else if (st.isFile()) out.push(childRel);
    }
  };
  await walk(dir, "", 0);
  return out;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
