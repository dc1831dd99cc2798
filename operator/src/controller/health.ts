import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "./log.ts";

/** The answer of one readiness check; `message` says what is wrong in words an operator can act on. */
export interface Health {
  readonly ok: boolean;
  readonly message: string;
}

/** A named readiness check: caches synced, leader election reachable, … */
export interface ReadinessCheck {
  readonly name: string;
  check(): Health;
}

export interface HealthServerOptions {
  /** 0 picks a free port (tests). */
  port: number;
  host?: string;
  registry: Registry;
  readiness: readonly ReadinessCheck[];
  log: Logger;
}

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves /healthz (the process and its event loop answer), /readyz (every readiness check passes;
 * 503 with the failing checks otherwise, `?verbose` lists all) and /metrics (Prometheus text).
 * Liveness deliberately checks nothing else: a restart does not fix a broken API server connection,
 * and killing a standby for a dead watch would only add churn; /readyz and the metrics show it.
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { registry, readiness, log } = options;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (url.pathname) {
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "/readyz": {
        const results = readiness.map((check) => ({ name: check.name, ...safeCheck(check) }));
        const ok = results.every((result) => result.ok);
        const lines = results
          .filter((result) => !result.ok || url.searchParams.has("verbose"))
          .map((result) => `[${result.ok ? "+" : "-"}]${result.name}: ${result.message}`);
        lines.push(ok ? "readyz check passed" : "readyz check failed");
        res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(lines.join("\n") + "\n");
        return;
      }
      case "/metrics":
        registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
          (err: unknown) => {
            log.error({ err }, "rendering /metrics failed");
            res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n");
          },
        );
        return;
      default:
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, "health server listening (/healthz, /readyz, /metrics)");
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** A check that throws is a failing check with the error as its message, never a 500. */
function safeCheck(check: ReadinessCheck): Health {
  try {
    return check.check();
  } catch (err) {
    return { ok: false, message: `check threw: ${err instanceof Error ? err.message : String(err)}` };
  }
}
