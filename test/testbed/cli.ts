/**
 * `npm run testbed:up [-- --mode=api|full] [--prometheus]` starts a test bed that outlives this
 * command and prints the `export KUBECONFIG=…` line; `npm run testbed:down` stops exactly the
 * processes of the runs it started (recorded in .testbed/current.json).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Cluster, stopRecorded, type ClusterState } from "./cluster.ts";
import { runsRoot } from "./paths.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  allowNegative: true,
  options: { mode: { type: "string", default: "full" }, prometheus: { type: "boolean", default: true } },
});
const currentFile = join(runsRoot, "current.json");

async function up(): Promise<void> {
  if (existsSync(currentFile)) {
    const state = JSON.parse(readFileSync(currentFile, "utf8")) as ClusterState;
    process.stderr.write(`A test bed is already recorded in ${currentFile}; run 'npm run testbed:down' first.\n`);
    process.stdout.write(`export KUBECONFIG=${state.kubeconfig}\n`);
    process.exitCode = 1;
    return;
  }
  const mode = values.mode === "api" ? "api" : "full";
  const cluster = await Cluster.start({ mode, prometheus: values.prometheus, detached: true });
  writeFileSync(currentFile, JSON.stringify(cluster.state, null, 2));
  const s = cluster.state;
  process.stdout.write(
    [
      `Test bed (${mode}) is running. Logs: ${join(s.runDir, "logs")}`,
      ...(s.prometheusUrl ? [`Prometheus: ${s.prometheusUrl}`] : []),
      `kubectl and helm: ${s.binDir}`,
      "",
      `export KUBECONFIG=${s.kubeconfig}`,
      `export PATH=${s.binDir}:$PATH`,
      "",
    ].join("\n"),
  );
  process.exit(0);
}

async function down(): Promise<void> {
  if (!existsSync(currentFile)) {
    process.stderr.write("No test bed is recorded as running.\n");
    return;
  }
  const state = JSON.parse(readFileSync(currentFile, "utf8")) as ClusterState;
  await stopRecorded(state);
  rmSync(currentFile);
  process.stdout.write(`Stopped ${state.processes.length} processes of ${state.runDir}\n`);
}

const cmd = positionals[0];
if (cmd === "up") await up();
else if (cmd === "down") await down();
else {
  process.stderr.write("usage: node test/testbed/cli.ts up|down [--mode=api|full] [--no-prometheus]\n");
  process.exitCode = 2;
}
