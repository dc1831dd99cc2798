/**
 * Starts `maas-serving serve` as a real child process (what the pod runs) on OS-assigned ports, and
 * small HTTP helpers for talking to it.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { request as httpRequest, Agent } from "node:http";
import { connect, type Socket } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { Env } from "../../../serving-image/src/contract.ts";

export const mainTs = path.resolve(import.meta.dirname, "../../../serving-image/src/main.ts");

/**
 * Runs triton_client.py (Triton's own Python HTTP client, `tritonclient[http]`) against the server at
 * `url` for `model`, with one input tensor (written to `<dir>/triton-input.json`); returns what it saw.
 */
export async function tritonClient(
  url: string,
  model: string,
  input: { name: string; shape: number[]; data: number[] },
  dir: string,
): Promise<Record<string, unknown>> {
  const inputFile = path.join(dir, "triton-input.json");
  await writeFile(inputFile, JSON.stringify(input));
  const script = path.join(import.meta.dirname, "triton_client.py");
  const { stdout } = await promisify(execFile)("python3", [script, new URL(url).host, model, inputFile]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

export interface ServingProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly metricsUrl: string;
  readonly logs: unknown[];
  /** Resolves when /v2/health/ready answers 200; rejects with the logs when the process exits first. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the server for `modelDir`; extra env overrides the defaults (served name "model"). `main` runs
 * another copy of the serving image (e.g. one on tfjs-node's node_modules).
 */
export async function startServing(
  modelDir: string,
  env: Record<string, string> = {},
  main = mainTs,
): Promise<ServingProcess> {
  const child = spawn(process.execPath, [main, "serve"], {
    env: {
      PATH: process.env["PATH"] ?? "",
      [Env.modelDir]: modelDir,
      [Env.servedName]: "model",
      [Env.httpPort]: "0",
      [Env.metricsPort]: "0",
      [Env.deploymentName]: "test-deployment",
      [Env.deploymentNamespace]: "test-namespace",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: unknown[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const ports = new Promise<{ httpPort: number; metricsPort: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; httpPort?: number; metricsPort?: number };
        logs.push(entry);
        if (entry.msg === "Listening") resolve({ httpPort: entry.httpPort!, metricsPort: entry.metricsPort! });
      } catch {
        logs.push(line);
      }
    });
    void exited.then((code) => {
      reject(new Error(`maas-serving exited with ${code} before listening: ${stderr}\n${JSON.stringify(logs)}`));
    });
  });
  const { httpPort, metricsPort } = await ports;
  const url = `http://127.0.0.1:${httpPort}`;
  return {
    child,
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    logs,
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let exitCode: number | null | undefined;
      void exited.then((c) => (exitCode = c));
      while (Date.now() < deadline) {
        if (exitCode !== undefined) throw new Error(`maas-serving exited with ${exitCode}: ${stderr}`);
        const res = await fetch(`${url}/v2/health/ready`).catch(() => undefined);
        if (res?.status === 200) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`maas-serving not ready after ${timeoutMs} ms; logs: ${JSON.stringify(logs)} ${stderr}`);
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One HTTP request with node:http (no retries, no body rewriting); `agent` controls keep-alive. */
export function rawRequest(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | string | undefined;
    agent?: Agent;
    onResponse?: () => void;
  } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? "GET", headers: options.headers, agent: options.agent },
      (res) => {
        options.onResponse?.();
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** POSTs JSON and parses the JSON answer. */
export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown>; headers: RawResponse["headers"] }> {
  const res = await rawRequest(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: JSON.parse(res.body.toString()) as Record<string, unknown>, headers: res.headers };
}

export async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await rawRequest(url);
  return { status: res.status, json: JSON.parse(res.body.toString()) as Record<string, unknown> };
}

/** Sums the samples of a metric whose labels include `labels` (Prometheus text exposition); undefined if none. */
export async function metricValue(
  metricsUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const text = await (await fetch(metricsUrl)).text();
  let sum: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/**
 * One TCP connection speaking HTTP/1.1 by hand, for tests that decide when each byte is sent and
 * whether the next request goes on the same connection. Optionally from another loopback address
 * (127.0.0.2, …), which the server sees as another client.
 */
export class RawConnection {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake: () => void = () => undefined;
  /** Resolves when the server has closed the connection (or reset it). */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      this.#wake();
    });
    // Writes after the server has gone fail; what matters to the tests is what was read, and `closed`.
    socket.on("error", () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#ended = true;
        this.#wake();
        resolve();
      }),
    );
  }

  static async open(url: string, localAddress?: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port), ...(localAddress ? { localAddress } : {}) });
    await once(socket, "connect");
    return new RawConnection(socket);
  }

  /** Request line and headers for `path` (POST unless said otherwise), ending with the blank line. */
  static head(path: string, headers: Record<string, string | number>, method = "POST"): string {
    const lines = Object.entries({ host: "maas", ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    return `${method} ${path} HTTP/1.1\r\n${lines.join("")}\r\n`;
  }

  get isClosed(): boolean {
    return this.#ended;
  }

  write(data: string | Buffer): void {
    if (!this.#socket.destroyed) this.#socket.write(data);
  }

  /** The next response; rejects when the connection closes before one has arrived whole. */
  async response(): Promise<RawResponse> {
    for (;;) {
      const parsed = this.#parse();
      if (parsed !== undefined) return parsed;
      if (this.#ended) {
        throw new Error(
          `the server closed the connection before a whole response arrived (got ${JSON.stringify(this.#buffer.toString())})`,
        );
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #parse(): RawResponse | undefined {
    const end = this.#buffer.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const [statusLine = "", ...lines] = this.#buffer.subarray(0, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers["content-length"] ?? 0);
    if (this.#buffer.length < end + 4 + length) return undefined;
    const body = this.#buffer.subarray(end + 4, end + 4 + length);
    this.#buffer = this.#buffer.subarray(end + 4 + length);
    return { status: Number(statusLine.split(" ")[1]), headers, body };
  }
}
