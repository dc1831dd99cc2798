/**
 * `maas-serving`: the image's entry point. `serve` runs the model server; `fetch` (the init container)
 * downloads the model into the model volume.
 */
import { Commands } from "./contract.ts";

const [command] = process.argv.slice(2);
if (command === Commands.serve) {
  const { runServe } = await import("./serve.ts");
  // Exit explicitly: a client holding a connection open must not keep a drained pod alive.
  process.exit(await runServe(process.env));
} else if (command === Commands.fetch) {
  const { runFetch } = await import("./fetch/index.ts");
  process.exitCode = await runFetch(process.env);
} else {
  process.stderr.write(
    `usage: ${Commands.binary} ${Commands.serve}|${Commands.fetch}${command === undefined ? "" : ` (got "${command}")`}\n`,
  );
  process.exitCode = 2;
}
