/**
 * Termination messages: the one line a container leaves in its termination-message file before it
 * exits, which the kubelet copies into the pod's status and the operator quotes in the
 * ModelDeployment's conditions.
 */
import { writeFile } from "node:fs/promises";
import type { Logger } from "pino";

/** Kubernetes keeps at most 4096 bytes of a termination message. */
export const maxTerminationMessageBytes = 4000;

/** `prefix` + `text` on one line, cut to what the kubelet keeps (pure). */
export function terminationLine(prefix: string, text: string): string {
  const line = prefix + text.replace(/\s*[\r\n]+\s*/g, " ");
  const bytes = Buffer.from(line, "utf8");
  if (bytes.length <= maxTerminationMessageBytes) return line;
  // A cut inside a multi-byte character decodes to U+FFFD, which is longer than what it replaces.
  return `${bytes
    .subarray(0, maxTerminationMessageBytes - 3)
    .toString("utf8")
    .replace(/\uFFFD$/, "")}...`;
}

/** Writes `line` to the termination-message file; a failure to write is logged, never thrown. */
export async function writeTerminationMessage(path: string, line: string, log: Logger): Promise<void> {
  try {
    await writeFile(path, line + "\n");
  } catch (err) {
    log.error({ path, reason: (err as Error).message }, "Cannot write the termination message");
  }
}
