/**
 * A model store on loopback for tests, benchmarks and the demo: serves the files under `root` over
 * plain HTTP (GET only; 404 for anything outside `root` or missing), so a ModelDeployment's fetch
 * step downloads a real model the way it would from https://.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join, normalize, resolve } from "node:path";

export interface ModelStore {
  server: Server;
  /** http://127.0.0.1:<port> */
  url: string;
  close(): Promise<void>;
}

export async function startModelStore(root: string): Promise<ModelStore> {
  const base = resolve(root);
  const server = createServer((req, res) => {
    let file: string;
    try {
      file = join(base, normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)));
    } catch {
      res.writeHead(400).end("bad path");
      return;
    }
    if (req.method !== "GET" || !file.startsWith(base + "/") || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-length": statSync(file).size });
    createReadStream(file).pipe(res);
  });
  server.unref();
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const a = server.address();
  return {
    server,
    url: `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => {
          done();
        });
      }),
  };
}
