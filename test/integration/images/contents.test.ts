// What is inside the two images users deploy, read from their mounted root filesystems: a numeric
// non-root user, this tree's sources and nothing else of the repository (no tests, no test bed state, no
// registry configuration), every module and package the entry points import, and only packages the lock
// file marks as production dependencies.
import assert from "node:assert/strict";
import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { join, relative } from "node:path";
import { build } from "esbuild";
import { imageSizeMb, type ImageName } from "../../testbed/images.ts";
import { repoRoot } from "../../testbed/paths.ts";
import { podman } from "../../testbed/podman.ts";
import { builtImages } from "./harness.ts";

interface Lock {
  packages: Record<string, { dev?: boolean }>;
}
const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as Lock;
const rootPackage = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  devDependencies: Record<string, string>;
};

/** Every installed package under `dir/node_modules`, as the lock file keys it ("node_modules/a/node_modules/b"). */
function installedPackages(root: string, dir = "node_modules"): string[] {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(abs).filter((e) => !e.startsWith("."))) {
    const names = entry.startsWith("@") ? readdirSync(join(abs, entry)).map((n) => `${entry}/${n}`) : [entry];
    for (const name of names) {
      const key = `${dir}/${name}`;
      out.push(key);
      // Workspace links point back into the image's own tree; their dependencies are hoisted.
      if (!lstatSync(join(root, key)).isSymbolicLink()) out.push(...installedPackages(root, `${key}/node_modules`));
    }
  }
  return out;
}

/** Files under `dir`, relative to `root`, skipping node_modules. */
function filesOutsideNodeModules(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(root, dir))) {
    const rel = join(dir, entry);
    if (entry === "node_modules") continue;
    if (lstatSync(join(root, rel)).isDirectory()) out.push(...filesOutsideNodeModules(root, rel));
    else out.push(rel);
  }
  return out;
}

/** The package a bare import names ("@scope/name/sub" → "@scope/name"). */
function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return parts.slice(0, specifier.startsWith("@") ? 2 : 1).join("/");
}

/**
 * The repository's modules the entry points load (static and literal dynamic imports, followed by esbuild
 * from the tree, not from the image), and the packages they import.
 */
async function moduleGraph(entryPoints: string[]): Promise<{ modules: string[]; packages: string[] }> {
  const result = await build({
    absWorkingDir: repoRoot,
    entryPoints,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    write: false,
    metafile: true,
    outdir: "out",
    logLevel: "silent",
  });
  const inputs = Object.entries(result.metafile.inputs);
  const packages = inputs
    .flatMap(([, input]) => input.imports.filter((i) => i.external && !isBuiltin(i.path)).map((i) => i.path))
    .map(packageName);
  return { modules: inputs.map(([path]) => path).sort(), packages: [...new Set(packages)].sort() };
}

const expected: Record<ImageName, { top: string[]; entryPoints: string[]; manifest: string }> = {
  operator: {
    top: ["node_modules", "operator", "package.json", "serving-image"],
    entryPoints: ["operator/src/main.ts"],
    manifest: "operator/package.json",
  },
  serving: {
    top: ["node_modules", "package.json", "serving-image"],
    // Inference workers are started from a URL, which a bundler does not follow.
    entryPoints: ["serving-image/src/main.ts", "serving-image/src/inference/worker.ts"],
    manifest: "serving-image/package.json",
  },
};

for (const name of Object.keys(expected) as ImageName[]) {
  describe(`the ${name} image's contents`, function () {
    this.timeout(60_000);
    let ref: string;
    let rootfs: string;

    before(async function () {
      this.timeout(900_000);
      ref = (await builtImages())[name];
      rootfs = (await podman(["image", "mount", ref])).trim();
      process.stderr.write(`      (${ref}: ${await imageSizeMb(ref)} MB)\n`);
    });

    after(async () => {
      if (ref) await podman(["image", "unmount", ref]);
    });

    it("runs as a numeric non-root user", async () => {
      const user = (await podman(["image", "inspect", "--format={{.Config.User}}", ref])).trim();
      assert.match(user, /^\d+:\d+$/, "numeric uid:gid, so runAsNonRoot can verify it");
      assert.notEqual(Number(user.split(":")[0]), 0);
    });

    it("holds this tree's sources, and no tests, test bed state or registry configuration", () => {
      assert.deepEqual(readdirSync(join(rootfs, "app")).sort(), expected[name].top);
      const files = filesOutsideNodeModules(rootfs, "app").map((f) => relative("app", f));
      assert.ok(files.length > 5, `${files.length} files`);
      for (const f of files) {
        assert.doesNotMatch(f, /(^|\/)(test|\.testbed)\/|\.test\.ts$|\.npmrc$/, `${f} should not be in the image`);
        assert.ok(
          readFileSync(join(rootfs, "app", f)).equals(readFileSync(join(repoRoot, f))),
          `${f} differs from this tree's: the image is stale`,
        );
      }
      for (const dir of ["root", "app"]) assert.ok(!existsSync(join(rootfs, dir, ".npmrc")), `/${dir}/.npmrc`);
    });

    it("holds every module its entry points import, and every package they import that is not optional", async () => {
      const { modules, packages } = await moduleGraph(expected[name].entryPoints);
      assert.ok(modules.length > 10, `${modules.length} modules`);
      const missing = modules.filter((m) => !existsSync(join(rootfs, "app", m)));
      assert.deepEqual(missing, [], "modules the entry points import are missing from the image");
      const manifest = JSON.parse(readFileSync(join(repoRoot, expected[name].manifest), "utf8")) as {
        optionalDependencies?: Record<string, string>;
      };
      const required = packages.filter((p) => !(p in (manifest.optionalDependencies ?? {})));
      assert.ok(required.length >= 2, required.join(", "));
      const absent = required.filter((p) => !existsSync(join(rootfs, "app", "node_modules", p, "package.json")));
      assert.deepEqual(absent, [], "packages the sources import are missing from the image");
    });

    it("holds only packages the lock file lists as production dependencies", () => {
      const packages = installedPackages(join(rootfs, "app"));
      assert.ok(packages.length > 10, `${packages.length} packages`);
      const dev = packages.filter((p) => lock.packages[p]?.dev === true);
      const unknown = packages.filter((p) => lock.packages[p] === undefined);
      assert.deepEqual(dev, [], "development dependencies in the image");
      assert.deepEqual(unknown, [], "packages the lock file does not know");
      // The tools behind the tests and the build; a devDependency that a production package also needs
      // (@types/node, through @kubernetes/client-node) is a production dependency in the lock file.
      const tools = Object.keys(rootPackage.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev);
      assert.ok(
        ["mocha", "typescript", "tsx", "eslint", "node"].every((t) => tools.includes(t)),
        tools.join(", "),
      );
      assert.deepEqual(
        tools.filter((t) => packages.includes(`node_modules/${t}`)),
        [],
        "test and build tools in the image",
      );
    });
  });
}
