import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../testbed/paths.ts";

// The README's first command: `npm run demo` must keep working. It starts its own test bed in its
// own process, so this runs it exactly as a user would (with --exit instead of waiting for Ctrl-C).
describe("e2e: npm run demo", function () {
  it("trains the sentiment classifier and serves it beside the pretrained model through both protocols, scales the pretrained one up for a burst and back down, and sees every replica in Prometheus", async function () {
    this.timeout(420_000);
    const child = spawn(process.execPath, [join(repoRoot, "scripts", "demo.ts"), "--exit"], { cwd: repoRoot });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => {
      child.on("exit", resolve);
    });
    assert.equal(code, 0, out);
    // The model maas was born for, trained from the repository's reviews and served from the model store.
    assert.match(
      out,
      /trained in [\d.]+ s \(12 epochs, cpu backend\): accuracy (0\.9\d|1\.00) on 96 training sentences/,
    );
    assert.match(out, /POST \/v1\/models\/sentiment:predict → 200 \{"predictions":\[\[[\d.e-]+\],\[[\d.e-]+\]\]\}/);
    assert.match(out, /POST \/v2\/models\/sentiment\/infer → 200 .*"name":"positive".*"shape":\[2,1\]/);
    for (const protocol of ["v1", "v2"]) {
      assert.match(out, new RegExp(`${protocol} {2}"a wonderful film with a great cast" → positive`));
      assert.match(out, new RegExp(`${protocol} {2}"a boring film with a terrible script" → negative`));
    }
    assert.match(out, /sentiment\s+True\s+1\/1/);
    assert.match(out, /POST \/v1\/models\/liveness:predict → 200 \{"predictions":\[\[/);
    assert.match(out, /POST \/v2\/models\/liveness\/infer → 200 .*"shape":\[1,2\]/);
    assert.match(out, /The burst is over; [2-4] replicas served it/);
    assert.match(out, /Scaled 1 → [2-4] replicas: [\d.]+ req\/s per replica over \d+s, target 5 req\/s/);
    assert.match(out, /Scaled [2-4] → [1-3] replicas/);
    assert.match(out, /liveness\s+True\s+1\/1/);
    assert.match(out, /Where to look next/);
    assert.ok((out.match(/liveness-[a-z0-9]+-[a-z0-9]+: \d+ requests/g)?.length ?? 0) >= 2, out);
    assert.match(
      out,
      /Status: Ready=True, ModelAvailable=True, Scheduled=True, Progressing=False, Degraded=False, Stalled=False, ScalingActive=True, ScalingLimited=False/,
    );
  });
});
