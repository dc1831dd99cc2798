// Static checks of the serving image's Dockerfiles: what can be verified without a Docker engine (none runs
// here). Building the images for real is left to a machine with Docker; these keep them honest meanwhile.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Commands, Paths, Ports } from "../../serving-image/src/contract.ts";
import { allowed, contextSources, parse, stages } from "./dockerfile-lib.ts";

const root = resolve(import.meta.dirname, "../..");

const files = [
  { name: "serving-image/Dockerfile", gpu: true },
  { name: "serving-image/Dockerfile.cpu", gpu: false },
];

for (const f of files) {
  describe(`the ${f.gpu ? "GPU" : "CPU"} serving image (${f.name}), checked statically`, function () {
    const text = readFileSync(resolve(root, f.name), "utf8");
    const all = parse(text);
    const st = stages(all);
    const final = st.at(-1)!;
    const ignore = readFileSync(resolve(root, `${f.name}.dockerignore`), "utf8");

    it("is multi-stage, and its final stage installs no packages and has no compiler", () => {
      assert.ok(st.length >= 2, "a build stage and a final stage");
      for (const i of final.filter((x) => x.op === "RUN")) {
        assert.doesNotMatch(i.args, /apt-get|apk |yum |dnf |npm |build-essential|gcc|g\+\+|make /, i.args);
      }
      assert.ok(
        st
          .slice(0, -1)
          .some((s) => s.some((i) => i.op === "RUN" && /npm ci --workspace serving-image --omit=dev/.test(i.args))),
        "production dependencies are installed with npm ci in a build stage",
      );
    });

    it("runs as a non-root numeric user in the final stage", () => {
      const users = final.filter((i) => i.op === "USER");
      assert.ok(users.length > 0, "final stage sets USER");
      const user = users.at(-1)!.args;
      assert.match(user, /^\d+(:\d+)?$/, "numeric uid[:gid], so runAsNonRoot can verify it");
      assert.notEqual(Number(user.split(":")[0]), 0);
    });

    it(`has the ${Commands.binary} entrypoint, whose wrapper runs serving-image/src/main.ts, which exists`, () => {
      const entry = final.find((i) => i.op === "ENTRYPOINT");
      assert.deepEqual(JSON.parse(entry!.args), [Commands.binary]);
      assert.deepEqual(JSON.parse(final.find((i) => i.op === "CMD")!.args), [Commands.serve]);
      const wrapper = all.find((i) => i.op === "RUN" && i.args.includes(`/usr/local/bin/${Commands.binary}`));
      assert.ok(wrapper, "the wrapper script is written in a build stage");
      assert.match(wrapper.args, /exec \/usr\/local\/bin\/node \/app\/serving-image\/src\/main\.ts "\$@"/);
      assert.ok(
        final.some((i) => i.op === "COPY" && i.args.includes(`/usr/local/bin/${Commands.binary}`)),
        "the final stage copies the wrapper",
      );
      assert.ok(existsSync(resolve(root, "serving-image/src/main.ts")), "serving-image/src/main.ts exists");
      assert.ok(existsSync(resolve(root, "serving-image/src/fetch/index.ts")), "the fetch command exists");
    });

    it("exposes the contract's HTTP and metrics ports and prepares the model volume path", () => {
      const exposed = final
        .filter((i) => i.op === "EXPOSE")
        .flatMap((i) => i.args.split(/\s+/))
        .map(Number);
      assert.deepEqual(exposed.sort(), [Ports.http, Ports.metrics].sort());
      assert.ok(final.some((i) => i.op === "RUN" && i.args.includes(`mkdir -p ${Paths.modelDir} `)));
      assert.equal(dirname(Paths.fetchedModelDir), Paths.modelDir, "fetch stages the model inside the volume");
    });

    it("copies only files that exist and that its .dockerignore lets into the context", () => {
      const sources = contextSources(all);
      assert.ok(sources.length >= 4);
      for (const s of sources) {
        assert.ok(existsSync(resolve(root, s)), `${s} exists in the repository`);
        const probe = s.endsWith("src") ? `${s}/contract.ts` : s;
        assert.ok(allowed(ignore, probe), `${probe} is allowed by ${f.name}.dockerignore`);
      }
      assert.ok(!allowed(ignore, "node_modules/express/package.json"), "node_modules stays out of the context");
      assert.ok(!allowed(ignore, "operator/src/main.ts"), "operator sources stay out of the context");
    });

    if (f.gpu) {
      it("builds on a CUDA 11.x runtime image with cuDNN 8, as libtensorflow 2.9 for tfjs-node-gpu 4.22 needs", () => {
        const arg = all.find((i) => i.op === "ARG" && i.args.startsWith("CUDA_IMAGE="));
        assert.match(arg!.args, /^CUDA_IMAGE=nvidia\/cuda:11\.\d+\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
        assert.equal(final[0]!.args, "${CUDA_IMAGE}");
        const pkg = JSON.parse(readFileSync(resolve(root, "serving-image/package.json"), "utf8")) as {
          optionalDependencies: Record<string, string>;
        };
        assert.equal(pkg.optionalDependencies["@tensorflow/tfjs-node-gpu"], "4.22.0");
        assert.ok(all.some((i) => i.op === "RUN" && i.args.includes("tfjs-node-gpu/lib/napi-v*/tfjs_binding.node")));
      });
    } else {
      it("builds on Node 24 and proves at build time that the tfjs-node binding loads, unless TFJS_NODE_CHECK=false", () => {
        assert.ok(all.some((i) => i.op === "ARG" && i.args === "NODE_VERSION=24"));
        assert.ok(
          all.some((i) => i.op === "ARG" && i.args === "TFJS_NODE_CHECK=true"),
          "the check is on by default",
        );
        const check = all.find((i) => i.op === "RUN" && i.args.includes("require('@tensorflow/tfjs-node')"));
        assert.ok(check, "a RUN loads the binding");
        const guarded = check.args.slice(check.args.indexOf('if [ "$TFJS_NODE_CHECK" = true ]; then'));
        assert.ok(guarded.includes("require('@tensorflow/tfjs-node')"), "the check is skipped only by the argument");
      });
    }
  });
}
