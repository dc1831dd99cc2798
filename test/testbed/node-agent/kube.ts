/**
 * A minimal JSON client for the API server, authenticated by the client certificate of a
 * kubeconfig written by the test bed's PKI. The node agent uses it instead of a generated client
 * because it needs merge-patches on the status subresource and nothing else fancy.
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";

export class KubeError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class Kube {
  readonly server: URL;
  private readonly agent: Agent;

  constructor(kubeconfigPath: string) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const cluster = kc.getCurrentCluster();
    const user = kc.getCurrentUser();
    if (!cluster?.caFile || !user?.certFile || !user.keyFile) {
      throw new Error(
        `kubeconfig ${kubeconfigPath} needs certificate-authority, client-certificate and client-key files`,
      );
    }
    this.server = new URL(cluster.server);
    this.agent = new Agent({
      ca: readFileSync(cluster.caFile),
      cert: readFileSync(user.certFile),
      key: readFileSync(user.keyFile),
      keepAlive: true,
      maxSockets: 8,
    });
  }

  /** Sends one request; resolves with the parsed body, rejects with KubeError on a non-2xx status. */
  request<T>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: this.server.hostname,
          port: this.server.port,
          path,
          method,
          agent: this.agent,
          timeout: 30_000,
          headers: {
            accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "content-type": contentType, "content-length": Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) {
              let message = text;
              try {
                message = (JSON.parse(text) as { message?: string }).message ?? text;
              } catch {
                /* not JSON */
              }
              reject(new KubeError(status, `${method} ${path}: ${status} ${message}`));
              return;
            }
            try {
              resolve((text ? JSON.parse(text) : {}) as T);
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
