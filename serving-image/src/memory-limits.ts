/**
 * The memory the serving process may use, read once at start-up: its container's cgroup limit and
 * V8's heap limit. `serve` sizes the budget for request bodies from them (see config.ts).
 */
import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";

export interface MemoryLimits {
  /** The container's memory limit in bytes; undefined when it has none or no cgroup says so. */
  readonly containerBytes: number | undefined;
  /** V8's heap limit in bytes (Node derives it from the container's limit unless --max-old-space-size sets it). */
  readonly heapBytes: number;
}

/** cgroup v2, then v1; inside a container both show the container's own cgroup. */
const cgroupLimitFiles = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"];

/**
 * A cgroup memory limit file's value in bytes; undefined for no limit: v2 writes "max", v1 writes a
 * page-rounded 2^63 that no machine has (anything past 2^53 is that).
 */
export function parseCgroupMemoryLimit(text: string): number | undefined {
  const value = text.trim();
  if (!/^\d+$/.test(value)) return undefined;
  const bytes = Number(value);
  return bytes > 0 && bytes <= Number.MAX_SAFE_INTEGER ? bytes : undefined;
}

/** Reads the limits of this process; a cgroup file that is missing or unreadable counts as no limit. */
export function readMemoryLimits(files: readonly string[] = cgroupLimitFiles): MemoryLimits {
  let containerBytes: number | undefined;
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    containerBytes = parseCgroupMemoryLimit(text);
    break;
  }
  return { containerBytes, heapBytes: getHeapStatistics().heap_size_limit };
}
