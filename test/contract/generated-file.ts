import assert from "node:assert/strict";

/** Fails naming the first differing line when a committed generated file is not what its generator makes. */
export function assertUpToDate(file: string, committed: string, generated: string): void {
  if (committed === generated) return;
  const a = committed.split("\n");
  const b = generated.split("\n");
  const i = a.findIndex((line, n) => line !== b[n]);
  const at = i === -1 ? a.length : i;
  assert.fail(
    `${file} is stale (run npm run generate); first difference at line ${at + 1}:\n` +
      `  committed: ${a[at] ?? "<end of file>"}\n  generated: ${b[at] ?? "<end of file>"}`,
  );
}
