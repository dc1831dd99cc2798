/**
 * The node agent's image table: which local executable stands in for a container. A container is
 * looked up by `command[0]`, else by its image's last path segment without tag. Ports are passed
 * through the environment variables the program reads, named here per container port.
 */
import { join } from "node:path";
import { Commands, Env, Ports } from "../../../serving-image/src/contract.ts";

export interface LocalCommand {
  /** The executable and the arguments that come before the container's own. */
  argv: string[];
  /** Container port → environment variable that tells the program which local port to bind. */
  portEnv: Record<number, string>;
  /** The program is an image's entry point: in image mode that image runs instead, or nothing does. */
  fromImage?: true;
}

export function commandTable(repoRoot: string): Record<string, LocalCommand> {
  const node = process.execPath;
  const fixture = (name: string) => join(repoRoot, "test", "testbed", "fixtures", name);
  return {
    [Commands.binary]: {
      argv: [node, join(repoRoot, "serving-image", "src", "main.ts")],
      portEnv: { [Ports.http]: Env.httpPort, [Ports.metrics]: Env.metricsPort },
      fromImage: true,
    },
    // Test fixtures: a tiny HTTP server with a metrics endpoint, and a program that fails on purpose.
    "testbed-http-server": { argv: [node, fixture("http-server.ts")], portEnv: { 8080: "PORT", 9090: "METRICS_PORT" } },
    "testbed-fail": { argv: [node, fixture("fail.ts")], portEnv: {} },
  };
}

/** The key a container is looked up by in the table. */
export function commandKey(container: { command?: string[]; image?: string }): string {
  if (container.command?.[0]) return container.command[0];
  const image = container.image ?? "";
  const last = image.split("/").pop() ?? image;
  return last.split("@")[0]!.split(":")[0]!;
}
