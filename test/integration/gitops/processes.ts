/**
 * A crash loop on demand: the local node agent runs a serving container as a local process, so
 * killing that process with SIGKILL is what the OOM killer does to a real container (exit 137, no
 * termination message). The process is found by its environment, which the operator sets per
 * ModelDeployment, so nothing else on the machine matches.
 */
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** SIGKILLs every process whose environment holds all of `env`, again each time one appears, until stopped. */
export function killProcessesWithEnv(env: Record<string, string>): () => Promise<void> {
  const wanted = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
        let vars: string[];
        try {
          vars = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
        } catch {
          continue; // gone, or not ours to read
        }
        if (!wanted.every((w) => vars.includes(w))) continue;
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // exited between the read and the kill
        }
      }
      await sleep(200);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}
