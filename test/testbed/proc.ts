/**
 * Process supervision for the test bed: free loopback ports, child processes with their output in
 * a log file, and a stop that ends exactly the processes this run started (by process group).
 */
import { spawn } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A port nothing is bound to on any address, by a probe (someone can still take it before its user binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    // On every address, as the servers given this port listen (the serving image on "::"): a port
    // free on 127.0.0.1 can be taken on another address (the KEDA adapter listens on the node's
    // IP), and a container given it then fails with EADDRINUSE on every restart (seen in CI).
    srv.listen(0, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

export interface Proc {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  isRunning(): boolean;
}

export interface StartOptions {
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep the process running after this Node process exits (testbed:up). */
  detached?: boolean;
}

/** Starts `cmd args` in its own process group, appending stdout and stderr to `<logDir>/<name>.log`. */
export function startProcess(name: string, cmd: string, args: string[], opts: StartOptions): Proc {
  const logFile = join(opts.logDir, `${name}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => {
      running = false;
      resolve(code ?? signal ?? "unknown");
    });
    child.on("error", () => {
      running = false;
      resolve("spawn-error");
    });
  });
  if (opts.detached) child.unref();
  return { name, pid: child.pid, logFile, exited, isRunning: () => running };
}

/** Polls `check` until it returns a truthy value, failing with the process's log tail if it dies. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
  proc?: Proc,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    if (proc && !proc.isRunning()) {
      throw new Error(`${proc.name} exited while waiting for ${what}; log tail:\n${logTail(proc.logFile)}`);
    }
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
      const tail = proc ? `\nlog tail of ${proc.name}:\n${logTail(proc.logFile)}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}${tail}`);
    }
    await sleep(100);
  }
}

export function logTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends SIGTERM to the process group of `pid`, then SIGKILL after `graceMs`; resolves when it is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) signal("SIGKILL");
  while (alive(pid)) await sleep(20);
}
