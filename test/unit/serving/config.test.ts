import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { defaultBodyMemory, readServeConfig } from "../../../serving-image/src/config.ts";
import { Env } from "../../../serving-image/src/contract.ts";
import { parseCgroupMemoryLimit, readMemoryLimits } from "../../../serving-image/src/memory-limits.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe("the memory limits serve reads", () => {
  it("parses cgroup v2 and v1 limit files, and reads 'max', v1's page-rounded 2^63 and garbage as no limit", () => {
    const cases: [string, number | undefined][] = [
      ["2147483648\n", 2 * GiB],
      ["max\n", undefined],
      ["9223372036854771712\n", undefined],
      ["", undefined],
      ["lots", undefined],
      ["0", undefined],
    ];
    for (const [text, bytes] of cases) assert.equal(parseCgroupMemoryLimit(text), bytes, JSON.stringify(text));
  });

  it("takes the first cgroup file that exists (v2 before v1), and the heap limit from V8", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "maas-cgroup-"));
    try {
      const v2 = path.join(dir, "memory.max");
      const v1 = path.join(dir, "memory.limit_in_bytes");
      await writeFile(v1, "1073741824\n");
      assert.equal(readMemoryLimits([v2, v1]).containerBytes, GiB, "v1 only");
      await writeFile(v2, "max\n");
      assert.equal(readMemoryLimits([v2, v1]).containerBytes, undefined, "v2 says no limit");
      await writeFile(v2, "536870912\n");
      const limits = readMemoryLimits([v2, v1]);
      assert.equal(limits.containerBytes, 512 * MiB);
      assert.ok(limits.heapBytes > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("serve's configuration of admission", () => {
  const memory = { containerBytes: 2 * GiB, heapBytes: 544 * MiB };

  it("budgets a quarter of the smaller of the container's memory limit and the heap limit for request bodies", () => {
    assert.deepEqual(defaultBodyMemory(memory), {
      bytes: 136 * MiB,
      source: `25% of the JS heap limit of ${544 * MiB} bytes`,
    });
    assert.deepEqual(defaultBodyMemory({ containerBytes: 256 * MiB, heapBytes: 544 * MiB }), {
      bytes: 64 * MiB,
      source: `25% of the container's memory limit of ${256 * MiB} bytes`,
    });
    assert.equal(defaultBodyMemory({ containerBytes: undefined, heapBytes: 4 * GiB }).bytes, GiB);
  });

  it("takes the budget, idle timeout and per-client share from the environment when set, and reports bad values", () => {
    const { config, problems } = readServeConfig(
      { [Env.bodyMemoryBytes]: "1000000", [Env.bodyIdleTimeoutMs]: "250", [Env.maxBodiesPerClient]: "0" },
      memory,
    );
    assert.deepEqual(problems, []);
    assert.equal(config.bodyMemoryBytes, 1_000_000);
    assert.equal(config.bodyMemorySource, Env.bodyMemoryBytes);
    assert.equal(config.bodyIdleTimeoutMs, 250);
    assert.equal(config.maxBodiesPerClient, 0);
    const bad = readServeConfig({ [Env.bodyMemoryBytes]: "0", [Env.bodyIdleTimeoutMs]: "soon" }, memory).problems;
    assert.deepEqual(bad, [
      `${Env.bodyMemoryBytes} must be an integer between 1 and ${Number.MAX_SAFE_INTEGER}, got "0"`,
      `${Env.bodyIdleTimeoutMs} must be an integer between 1 and ${Number.MAX_SAFE_INTEGER}, got "soon"`,
    ]);
  });

  it("by default lets one client address send an eighth of the queue's requests at once, at least one", () => {
    const share = (maxQueue: string): number =>
      readServeConfig({ [Env.maxQueue]: maxQueue }, memory).config.maxBodiesPerClient;
    assert.equal(share("256"), 32);
    assert.equal(share("100"), 13);
    assert.equal(share("4"), 1);
    assert.equal(readServeConfig({}, memory).config.bodyIdleTimeoutMs, 5_000);
  });

  it("reads the container's requested cores (0 when unset) and refuses what is not a whole number", () => {
    assert.equal(readServeConfig({}, memory).config.cpus, 0);
    assert.equal(readServeConfig({ [Env.cpus]: "3" }, memory).config.cpus, 3);
    const bad = readServeConfig({ [Env.cpus]: "1.5" }, memory);
    assert.equal(bad.config.cpus, 0);
    assert.match(bad.problems.join("; "), /MAAS_CPUS must be an integer/);
  });
});
