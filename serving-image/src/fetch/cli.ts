/**
 * Stand-alone entry of the fetch command (the image runs it through main.ts as `maas-serving fetch`):
 *
 *     node serving-image/src/fetch/cli.ts                 fetch, configured by the environment
 *     node serving-image/src/fetch/cli.ts digest <dir>    print the sha256 that MAAS_MODEL_SHA256 expects for a model directory
 */
import { digestDirectory } from "./digest.ts";
import { runFetch } from "./index.ts";

const [command, arg] = process.argv.slice(2);
if (command === "digest") {
  if (arg === undefined) {
    process.stderr.write("usage: cli.ts digest <model-dir>\n");
    process.exitCode = 2;
  } else {
    try {
      process.stdout.write(`${await digestDirectory(arg)}\n`);
    } catch (err) {
      process.stderr.write(`cannot hash ${arg}: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
} else if (command === undefined || command === "fetch") {
  process.exitCode = await runFetch(process.env);
} else {
  process.stderr.write(`unknown command "${command}" (expected: fetch, digest <dir>)\n`);
  process.exitCode = 2;
}
