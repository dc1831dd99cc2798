/** A small Dockerfile and .dockerignore reader for the static image checks (no Docker engine runs here). */

export interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
export function parse(text: string): Instruction[] {
  const joined = text.replace(/\\\r?\n/g, " ");
  return joined
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const m = /^(\S+)\s*(.*)$/.exec(l)!;
      return { op: m[1]!.toUpperCase(), args: m[2]! };
    });
}

/** Instructions grouped by stage; the last group is the final image. */
export function stages(ins: readonly Instruction[]): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of ins) {
    if (i.op === "FROM") out.push([i]);
    else out.at(-1)?.push(i);
  }
  return out;
}

/** The build-context sources of the COPY lines (not those copying `--from` a stage or an image), as written. */
export function contextSources(ins: readonly Instruction[]): string[] {
  return ins
    .filter((i) => i.op === "COPY" && !i.args.includes("--from="))
    .flatMap((i) =>
      i.args
        .split(/\s+/)
        .filter((a) => !a.startsWith("--"))
        .slice(0, -1),
    );
}

/**
 * .dockerignore semantics, enough for an allow-list: later lines win, "!" re-includes, "*" stays within one
 * path segment, "**" spans segments, and a pattern that matches a directory matches everything under it.
 */
export function allowed(ignore: string, path: string): boolean {
  const prefixes = path.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
  let included = true;
  for (const raw of ignore.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const negate = line.startsWith("!");
    const pattern = negate ? line.slice(1) : line;
    const body = pattern
      .split("**")
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*"))
      .join(".*");
    const re = new RegExp(`^${body}$`);
    if (prefixes.some((p) => re.test(p))) included = negate;
  }
  return included;
}
