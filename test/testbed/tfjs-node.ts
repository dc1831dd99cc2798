/**
 * The serving image's `tensorflow` backend (tfjs-node), as the CPU image has it (serving-image/Dockerfile.cpu),
 * for the tests and bench:serving. The image's node_modules are made as its Dockerfile makes them
 * (`npm ci --workspace serving-image --omit=dev` from this checkout's lockfile, tfjs-node-gpu removed),
 * except that tfjs-node's install script cannot run here: it downloads libtensorflow 2.9.1 and a
 * prebuilt binding from storage.googleapis.com. So install scripts are off, and tfjs-node's own N-API
 * binding (binding/*.cc in its package) is compiled with g++ against Node's headers and the C API that
 * a TensorFlow wheel from PyPI exports (libtensorflow_cc.so.2 and the headers under tensorflow/include).
 * What runs is tfjs-node 4.22's JavaScript and binding on that wheel's TensorFlow (2.21 here; the image
 * has 2.9.1).
 *
 * Cached under <cache>/tfjs-node-<key>/, the key hashing the lockfile, the serving image's
 * package.json, the TensorFlow version and directory (the binding finds libtensorflow there by
 * rpath) and Node's version; a tree is complete once its marker is written, so an interrupted build
 * starts over. Trees of older keys are not removed; two processes building one key at once are not
 * guarded against (the tests and the bench use different cache directories).
 */
import { execFile } from "node:child_process";
import { copyFile, cp, mkdir, mkdtemp, readFile, realpath, rename, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { exists, key } from "./paths.ts";

const root = path.resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** A TensorFlow wheel's package directory (holding libtensorflow_cc.so.2 and include/) and its version. */
export interface TensorflowWheel {
  readonly dir: string;
  readonly version: string;
}

/** The TensorFlow that `python` imports, found without importing it (which takes seconds). */
export async function tensorflowOf(python: string): Promise<TensorflowWheel> {
  const script = [
    "import importlib.util, importlib.metadata as m, os",
    "s = importlib.util.find_spec('tensorflow')",
    "if s is None or s.origin is None: raise SystemExit('TensorFlow is not installed for this Python')",
    "v = None",
    "for d in ('tensorflow-cpu', 'tensorflow'):",
    "    try:",
    "        v = m.version(d)",
    "        break",
    "    except m.PackageNotFoundError:",
    "        pass",
    "print(os.path.dirname(s.origin))",
    "print(v)",
  ].join("\n");
  let stdout: string;
  try {
    ({ stdout } = await run(python, ["-c", script]));
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`no TensorFlow for ${python} (${(e.stderr ?? e.message).trim().split("\n").at(-1)})`, {
      cause: err,
    });
  }
  const [dir, version] = stdout.trim().split("\n");
  if (dir === undefined || version === undefined || version === "None")
    throw new Error(`${python} found TensorFlow but not its version: ${stdout}`);
  if (!(await exists(path.join(dir, "libtensorflow_cc.so.2"))))
    throw new Error(`${dir} has no libtensorflow_cc.so.2 (TensorFlow's C API)`);
  return { dir, version };
}

/**
 * Node's C headers (node_api.h): beside the binary in a Node.js tarball, or in the `node-<platform>-<arch>`
 * package that the project's pinned `node` devDependency installs (its bin/node is a hard link, so the
 * binary's own path does not lead there), or the system's.
 */
async function nodeHeaderDir(): Promise<string> {
  const candidates = [path.resolve(await realpath(process.execPath), "../../include/node")];
  try {
    const fromNodePackage = createRequire(path.join(root, "node_modules/node/package.json"));
    const pkg = fromNodePackage.resolve(`node-${process.platform}-${process.arch}/package.json`);
    candidates.push(path.join(path.dirname(pkg), "include/node"));
  } catch {
    // not installed through the `node` package
  }
  candidates.push("/usr/local/include/node", "/usr/include/node");
  for (const dir of candidates) if (await exists(path.join(dir, "node_api.h"))) return dir;
  throw new Error(`no Node.js headers (node_api.h) to compile tfjs-node's binding; looked in ${candidates.join(", ")}`);
}

/** Runs a build step; on failure, the error names the step and carries the command's output. */
async function step(what: string, command: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, maxBuffer: 64 * 2 ** 20 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim().split("\n").slice(-20).join("\n");
    throw new Error(`${what}: ${e.message.split("\n")[0]}\n${output}`, { cause: err });
  }
}

/**
 * The directory (under `cacheDir`) whose node_modules is the CPU image's, with tfjs-node's binding built
 * against `tf`; made on first use (about 30 s: npm ci, then g++).
 */
export async function ensureTfjsNodeTree(tf: TensorflowWheel, cacheDir: string): Promise<string> {
  const nodeHeaders = await nodeHeaderDir();
  const files = ["package.json", "package-lock.json", "serving-image/package.json", "operator/package.json"];
  const contents = await Promise.all(files.map((f) => readFile(path.join(root, f))));
  // The binding links to tf.dir by rpath, so a tree built against another TensorFlow directory is another tree.
  const tree = path.join(cacheDir, `tfjs-node-${key([...contents, tf.version, tf.dir, process.version])}`);
  const marker = path.join(tree, ".complete");
  if (await exists(marker)) return tree;
  console.error(
    `tfjs-node: making the CPU image's node_modules in ${tree} (binding against TensorFlow ${tf.version})…`,
  );
  const partial = `${tree}.partial-${process.pid}`;
  try {
    await rm(partial, { recursive: true, force: true });
    for (const f of files) {
      await mkdir(path.dirname(path.join(partial, f)), { recursive: true });
      await copyFile(path.join(root, f), path.join(partial, f));
    }
    const npmCi = ["ci", "--workspace", "serving-image", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"];
    await step("npm ci of the serving image's packages failed (is the npm registry reachable?)", "npm", npmCi, partial);
    await rm(path.join(partial, "node_modules/@tensorflow/tfjs-node-gpu"), { recursive: true, force: true });
    const pkg = path.join(partial, "node_modules/@tensorflow/tfjs-node");
    if (!(await exists(path.join(pkg, "binding/tfjs_backend.cc"))))
      throw new Error("the lockfile's @tensorflow/tfjs-node has no binding source to compile");
    // Where tfjs-node looks for its binding (lib/napi-v<N>/tfjs_binding.node, N the newest Node supports).
    const require = createRequire(path.join(partial, "package.json"));
    const { find } = require("@mapbox/node-pre-gyp") as { find: (packageJson: string) => string };
    const binding = find(path.join(pkg, "package.json"));
    const napi = /napi-v(\d+)/.exec(binding)?.[1];
    if (napi === undefined) throw new Error(`unexpected tfjs-node binding path ${binding}`);
    await mkdir(path.dirname(binding), { recursive: true });
    const gxx = [
      ...["-shared", "-fPIC", "-O2", "-std=c++17", `-DNAPI_VERSION=${napi}`],
      ...[`-I${nodeHeaders}`, `-I${path.join(tf.dir, "include")}`, `-I${path.dirname(pkg)}`],
      ...["binding/tfjs_backend.cc", "binding/tfjs_binding.cc"].map((f) => path.join(pkg, f)),
      ...[`-L${tf.dir}`, "-l:libtensorflow_cc.so.2", "-l:libtensorflow_framework.so.2", `-Wl,-rpath,${tf.dir}`],
      ...["-o", binding],
    ];
    await step("could not compile tfjs-node's binding with g++", "g++", gxx);
    // The Dockerfile's own check: the binding loads and runs an op.
    const check = await step(
      "tfjs-node does not load with the binding built here",
      process.execPath,
      [
        ...["--input-type=commonjs", "-e"],
        "const u=require('node:util'); u.isNullOrUndefined ??= (v) => v == null; const tf=require('@tensorflow/tfjs-node');" +
          "console.log(tf.getBackend(), Array.from(tf.add(tf.tensor1d([1,2]), 1).dataSync()).join(','))",
      ],
      partial,
    );
    if (!check.split("\n").includes("tensorflow 2,3")) throw new Error(`tfjs-node's check printed ${check}`);
    await rm(tree, { recursive: true, force: true });
    await rename(partial, tree);
    await writeFile(marker, JSON.stringify({ tensorflow: tf.version, node: process.version }) + "\n");
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return tree;
}

/**
 * A copy of this checkout's serving image that runs on `tree`'s node_modules: serving-image/src copied,
 * because module resolution follows a file's real path, so the source must sit beside the tree's
 * node_modules rather than link to this checkout. Returns its directory; remove it when done.
 */
export async function tfjsNodeCheckout(tree: string): Promise<string> {
  const checkout = await mkdtemp(path.join(tmpdir(), "maas-tfjs-node-"));
  await mkdir(path.join(checkout, "serving-image"));
  await copyFile(path.join(root, "package.json"), path.join(checkout, "package.json"));
  await copyFile(path.join(root, "serving-image/package.json"), path.join(checkout, "serving-image/package.json"));
  await cp(path.join(root, "serving-image/src"), path.join(checkout, "serving-image/src"), { recursive: true });
  await symlink(path.join(tree, "node_modules"), path.join(checkout, "node_modules"), "dir");
  return checkout;
}
