/**
 * The staging directory and the atomic commit. Files are written into `.<name>.partial-XXXX` next to the
 * target (same filesystem), fsynced, verified, and the directory is renamed into place, so the target
 * only ever holds a complete model: the previous one or the new one.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, open, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Env, Paths } from "../contract.ts";
import { FetchError, localError } from "./errors.ts";

const partialInfix = ".partial-";
const oldInfix = ".old-";

/** Name prefixes of leftovers a killed `fetch` may leave next to target; pure. */
export function leftoverPrefixes(target: string): string[] {
  const name = basename(target);
  return [`.${name}${partialInfix}`, `.${name}${oldInfix}`];
}

/**
 * Creates the staging directory next to target after removing leftovers of earlier, killed runs.
 * Returns its path.
 */
export async function createStaging(target: string): Promise<string> {
  const parent = dirname(target);
  await mkdir(parent, { recursive: true }).catch((err: unknown) => {
    throw hint(localError(err, `create ${parent}`));
  });
  const prefixes = leftoverPrefixes(target);
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (prefixes.some((p) => name.startsWith(p))) await rm(join(parent, name), { recursive: true, force: true });
  }
  const staging = await mkdtemp(join(parent, prefixes[0]!)).catch((err: unknown) => {
    throw hint(localError(err, `create a staging directory in ${parent}`));
  });
  // mkdtemp makes it 0700; `serve` may run as another user of the same group or as a different uid.
  await chmod(staging, 0o755);
  return staging;
}

/** Flushes every file and directory under dir to disk (files were synced when written; this covers the entries). */
export async function syncTree(dir: string): Promise<void> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    if (ent.isDirectory()) await syncTree(join(dir, ent.name));
  }
  await syncDir(dir);
}

/**
 * Moves the finished staging directory to target. An existing target is first renamed aside and removed
 * afterwards, restored if the second rename fails; the parent directory is fsynced so the rename survives a crash.
 */
export async function commitStaging(staging: string, target: string): Promise<void> {
  const parent = dirname(target);
  const existing = await stat(target).then(
    () => true,
    () => false,
  );
  if (!existing) {
    await rename(staging, target).catch((err: unknown) => {
      throw hint(localError(err, `rename the staged model to ${target}`));
    });
  } else {
    const aside = join(parent, `${leftoverPrefixes(target)[1]!}${randomBytes(4).toString("hex")}`);
    await rename(target, aside).catch((err: unknown) => {
      throw hint(localError(err, `move the previous model at ${target} aside`));
    });
    try {
      await rename(staging, target);
    } catch (err) {
      await rename(aside, target).catch(() => undefined);
      throw hint(localError(err, `rename the staged model to ${target}`));
    }
    await rm(aside, { recursive: true, force: true });
  }
  await syncDir(parent);
}

/** Removes a staging directory; never throws (it runs on the failure path). */
export async function discardStaging(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true }).catch(() => undefined);
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Adds the fix to errors a misplaced target causes: a mount point (the volume itself) cannot be renamed,
 * and its parent is usually the read-only root filesystem. Other errors are returned unchanged. Pure.
 */
export function hint(err: FetchError): FetchError {
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  if (code === "EBUSY" || code === "EXDEV" || code === "EROFS" || code === "EACCES") {
    return new FetchError(
      `${err.message}; ${Env.modelDir} must be a directory inside a writable volume, not its mount point (default ${Paths.fetchedModelDir})`,
      { cause: err.cause },
    );
  }
  return err;
}
