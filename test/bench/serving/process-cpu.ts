/**
 * CPU time of a process tree from Linux's /proc, for the serving bench's CPU per request: a server may
 * be one process with threads (maas, the naive server) or a parent with worker processes (KServe), and
 * both must be counted whole for the comparison to be fair.
 */
import { readdir, readFile } from "node:fs/promises";

interface ProcessTicks {
  ppid: number;
  /** utime + stime of the process, plus cutime + cstime: the children it has already waited for. */
  ticks: number;
}

async function readTicks(pid: number): Promise<ProcessTicks | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined); // it may have exited
  if (stat === undefined) return undefined;
  // Fields after the parenthesised command name: state is the 3rd overall, ppid the 4th, utime, stime,
  // cutime and cstime the 14th to 17th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const [ppid, utime, stime, cutime, cstime] = [1, 11, 12, 13, 14].map((i) => Number(fields[i]));
  return { ppid: ppid!, ticks: utime! + stime! + cutime! + cstime! };
}

/**
 * CPU seconds `pid` and all its descendants have used so far, all threads together, in clock ticks of
 * 1/100 s (the USER_HZ of every mainstream Linux build). A worker that exits is still counted once its
 * parent waits for it (cutime, cstime). It moves far less than throughput when other work shares the
 * machine, which makes it the fairer measure of what a code change costs per request.
 */
export async function processTreeCpuSeconds(pid: number): Promise<number> {
  const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
  const all = new Map<number, ProcessTicks>();
  for (const [i, ticks] of (await Promise.all(pids.map(readTicks))).entries())
    if (ticks !== undefined) all.set(pids[i]!, ticks);
  const children = new Map<number, number[]>();
  for (const [child, { ppid }] of all) children.set(ppid, [...(children.get(ppid) ?? []), child]);
  let ticks = 0;
  const queue = [pid];
  for (let p = queue.pop(); p !== undefined; p = queue.pop()) {
    ticks += all.get(p)?.ticks ?? 0;
    queue.push(...(children.get(p) ?? []));
  }
  return ticks / 100;
}
