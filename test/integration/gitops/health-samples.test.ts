// The Argo CD health check as Argo CD's own tests run one: every entry of health_test.yaml, its
// testdata/ sample (a status taken from a live object by health-live.test.ts) through health.lua in
// gopher-lua, and the same samples through kstatus. No cluster: only the two tools' binaries.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { argoHealth, kstatus } from "../../testbed/gitops-tools.ts";
import { healthCheckDir, healthLua, healthTestYaml, sampleFile, situations, type HealthTest } from "./situations.ts";

describe("the ModelDeployment health check in Argo CD's test layout (health.lua, health_test.yaml, testdata/)", function () {
  this.timeout(300_000); // a first run builds the two tools
  const tests = (parse(readFileSync(healthTestYaml, "utf8")) as { tests: HealthTest[] }).tests;
  const samples = tests.map((t) => parse(readFileSync(join(healthCheckDir, t.inputPath), "utf8")) as object);

  it("has one test per situation, in order, expecting the situation's verdict, and no stray sample", () => {
    assert.deepEqual(
      tests.map((t) => [t.inputPath, t.healthStatus.status]),
      situations.map((s) => [`testdata/${s.name}.yaml`, s.argo]),
    );
    for (const s of situations) assert.ok(existsSync(sampleFile(s.name)), s.name);
    assert.deepEqual(
      readdirSync(join(healthCheckDir, "testdata")).sort(),
      situations.map((s) => `${s.name}.yaml`).sort(),
    );
  });

  for (const openLibs of [true, false]) {
    it(`passes every test in gopher-lua ${openLibs ? "with the open libraries (Argo CD's built-in checks)" : "without them (an argocd-cm customization)"}`, async () => {
      const verdicts = await argoHealth(healthLua, samples, { openLibs });
      assert.deepEqual(
        verdicts.map((v, i) => ({ inputPath: tests[i]!.inputPath, ...v })),
        tests.map((t) => ({ inputPath: t.inputPath, ...t.healthStatus })),
      );
    });
  }

  it("gives kstatus' expected status for every sample", async () => {
    const verdicts = await kstatus(samples);
    assert.deepEqual(
      verdicts.map((v, i) => [tests[i]!.inputPath, v.status]),
      situations.map((s) => [`testdata/${s.name}.yaml`, s.kstatus]),
    );
  });

  it("explains each verdict: the message says what the situation is", () => {
    for (const [i, s] of situations.entries()) assert.match(tests[i]!.healthStatus.message, s.argoMessage, s.name);
  });
});
