/**
 * `npm run images`: builds the operator image and the CPU serving image from the repository's Dockerfiles
 * on this machine (no Docker engine, no registry; see test/testbed/images.ts), installing buildah, podman,
 * runc and mmdebstrap first if needed. An unchanged tree builds nothing. Progress on stderr; the images'
 * references and sizes on stdout.
 */
import { buildImages, imageSizeMb } from "../test/testbed/images.ts";

const refs = await buildImages();
for (const [name, ref] of Object.entries(refs)) process.stdout.write(`${name}\t${ref}\t${await imageSizeMb(ref)} MB\n`);
