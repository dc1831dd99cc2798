// Static checks of the operator image (operator/Dockerfile) against the code and the chart that runs it. No
// Docker engine runs here; these checks keep the image honest meanwhile: everything main.ts imports is in
// the image, and the user and port agree with the chart.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { repoRoot } from "../testbed/paths.ts";
import { allowed, parse, stages } from "./dockerfile-lib.ts";

/**
 * Every module specifier in a TypeScript file: static imports, re-exports and dynamic imports;
 * `typeOnly` for `import type …`/`export type …`, which Node's type stripping erases.
 */
function specifiers(source: string): { spec: string; typeOnly: boolean }[] {
  const out: { spec: string; typeOnly: boolean }[] = [];
  for (const m of source.matchAll(/(?:^|\n)\s*(import|export)\b(\s+type\b)?[^'"]*?\bfrom\s*["']([^"']+)["']/g))
    out.push({ spec: m[3]!, typeOnly: m[2] !== undefined });
  for (const m of source.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) out.push({ spec: m[1]!, typeOnly: false });
  for (const m of source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push({ spec: m[1]!, typeOnly: false });
  return out;
}

/**
 * Files reachable from `entry` through relative imports, the bare package names imported on the way
 * at run time, and those imported for their types only.
 */
function importClosure(entry: string): { files: Set<string>; packages: Set<string>; typePackages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const typePackages = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const { spec, typeOnly } of specifiers(readFileSync(file, "utf8"))) {
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec);
        assert.ok(existsSync(target), `${relative(repoRoot, file)} imports ${spec}, which does not exist`);
        pending.push(target);
      } else if (!spec.startsWith("node:") && !builtinModules.includes(spec)) {
        const parts = spec.split("/");
        (typeOnly ? typePackages : packages).add(spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!);
      }
    }
  }
  for (const p of packages) typePackages.delete(p);
  return { files, packages, typePackages };
}

describe("the operator image (operator/Dockerfile), checked statically", () => {
  const all = parse(readFileSync(join(repoRoot, "operator/Dockerfile"), "utf8"));
  const st = stages(all);
  const final = st.at(-1)!;
  const ignore = readFileSync(join(repoRoot, "operator/Dockerfile.dockerignore"), "utf8");
  const copies = final.filter((i) => i.op === "COPY" && !i.args.includes("--from="));
  const copied = copies.map((i) => {
    const [src, dest] = i.args.split(/\s+/).filter((a) => !a.startsWith("--"));
    return { src: src!, dest: dest! };
  });

  it("installs the operator's production dependencies with npm ci in a build stage, and nothing in the final one", () => {
    assert.ok(st.length >= 2, "a build stage and a final stage");
    assert.ok(
      st
        .slice(0, -1)
        .some((s) => s.some((i) => i.op === "RUN" && /npm ci --workspace operator --omit=dev/.test(i.args))),
    );
    assert.deepEqual(
      final.filter((i) => i.op === "RUN"),
      [],
      "the final stage runs nothing",
    );
    assert.ok(final.some((i) => i.op === "COPY" && /--from=build \/app\/node_modules node_modules/.test(i.args)));
  });

  it("runs operator/src/main.ts with Node directly, as a non-root numeric user the chart also sets", () => {
    const entry = JSON.parse(final.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
    assert.deepEqual(entry, ["/usr/local/bin/node", "/app/operator/src/main.ts"]);
    const user = final.filter((i) => i.op === "USER").at(-1)?.args ?? "";
    assert.match(user, /^\d+:\d+$/, "numeric uid:gid, so runAsNonRoot can verify it");
    const [uid, gid] = user.split(":").map(Number);
    assert.notEqual(uid, 0);
    const deployment = readFileSync(join(repoRoot, "charts/maas-operator/templates/deployment.yaml"), "utf8");
    const runAsUser = [...deployment.matchAll(/runAsUser: (\d+)/g)].map((m) => Number(m[1]));
    const runAsGroup = [...deployment.matchAll(/runAsGroup: (\d+)/g)].map((m) => Number(m[1]));
    assert.ok(runAsUser.length > 0 && runAsUser.every((u) => u === uid), `the chart runs as ${uid}`);
    assert.ok(runAsGroup.length > 0 && runAsGroup.every((g) => g === gid), `the chart runs as group ${gid}`);
  });

  it("exposes the health port that main.ts defaults to and the chart configures", () => {
    const exposed = final.filter((i) => i.op === "EXPOSE").flatMap((i) => i.args.split(/\s+/).map(Number));
    const main = readFileSync(join(repoRoot, "operator/src/main.ts"), "utf8");
    const flagDefault = /"health-port": \{ type: "string", default: "(\d+)" \}/.exec(main);
    assert.ok(flagDefault, "main.ts declares a --health-port default");
    const values = parseYaml(readFileSync(join(repoRoot, "charts/maas-operator/values.yaml"), "utf8")) as {
      healthPort: number;
    };
    assert.deepEqual(exposed, [Number(flagDefault[1])]);
    assert.equal(values.healthPort, Number(flagDefault[1]));
  });

  it("copies every file main.ts imports, and the package.json files that mark them as ES modules", () => {
    const { files } = importClosure(join(repoRoot, "operator/src/main.ts"));
    assert.ok(files.size > 10, `main.ts reaches ${files.size} files`);
    for (const file of files) {
      const rel = relative(repoRoot, file);
      assert.ok(
        copied.some((c) => rel === c.src || rel.startsWith(`${c.src}/`)),
        `${rel} is imported by main.ts but no COPY puts it into the image`,
      );
      assert.ok(allowed(ignore, rel), `${rel} is kept out of the build context by Dockerfile.dockerignore`);
      assert.ok(!rel.endsWith(".test.ts"), `${rel}: main.ts imports a test file`);
    }
    for (const pkg of ["package.json", "operator/package.json"]) {
      assert.ok(
        copied.some((c) => c.src === pkg),
        `${pkg} is copied`,
      );
      assert.equal((JSON.parse(readFileSync(join(repoRoot, pkg), "utf8")) as { type?: string }).type, "module");
    }
  });

  it("gets every package main.ts imports from the operator workspace's dependencies", () => {
    const { packages, typePackages } = importClosure(join(repoRoot, "operator/src/main.ts"));
    const pkg = JSON.parse(readFileSync(join(repoRoot, "operator/package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
    };
    assert.ok(packages.has("pino") && packages.has("yaml"), [...packages].join(", "));
    // The operator has its own Kubernetes client: it imports client-node for its types only, which
    // Node erases, so the package stays out of the image.
    assert.ok(typePackages.has("@kubernetes/client-node"), [...typePackages].join(", "));
    assert.equal(pkg.dependencies?.["@kubernetes/client-node"], undefined);
    for (const name of packages) {
      assert.ok(
        pkg.dependencies?.[name] !== undefined,
        `main.ts imports ${name}, which is not in operator/package.json dependencies (npm ci --omit=dev skips it)`,
      );
    }
  });

  it("copies only files that exist and that Dockerfile.dockerignore lets into the context", () => {
    for (const i of all.filter((x) => x.op === "COPY" && !x.args.includes("--from="))) {
      const [src] = i.args.split(/\s+/).filter((a) => !a.startsWith("--"));
      assert.ok(existsSync(join(repoRoot, src!)), `${src} exists`);
      const probe = src!.endsWith("/src") ? `${src}/main.ts` : src!;
      assert.ok(allowed(ignore, probe), `${probe} is in the build context`);
    }
    assert.ok(!allowed(ignore, "node_modules/yaml/package.json"), "node_modules stays out of the context");
    assert.ok(!allowed(ignore, "serving-image/src/main.ts"), "the serving image's code stays out");
    assert.ok(!allowed(ignore, ".testbed/run/kubeconfig"), "test bed state stays out");
  });
});
