/**
 * The `serve` command: starts the HTTP and metrics servers at once (live, not ready), loads and warms
 * up the model in inference workers (ready), and on SIGTERM drains accepted requests before exiting 0.
 * A model that fails to load leaves the process up and not ready, with the reason in /v1 status and
 * /v2 ready; under the operator (MAAS_EXIT_ON_LOAD_FAILURE=true) it writes the reason to its
 * termination message and exits 1 instead, so the kubelet retries with back-off and pod status (and
 * the ModelDeployment's conditions) carry the reason — never a crash loop without a message.
 */
import { once } from "node:events";
import { availableParallelism } from "node:os";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { defaultTensorflowThreads } from "./backends/select.ts";
import { readServeConfig, type ServeConfig } from "./config.ts";
import { DataPlane } from "./dataplane.ts";
import { createApp } from "./http/app.ts";
import { ServingMetrics, createMetricsServer } from "./http/metrics.ts";
import { WorkerPool } from "./inference/pool.ts";
import { logger } from "./log.ts";
import { readMemoryLimits } from "./memory-limits.ts";
import { TerminationPrefixes } from "./contract.ts";
import { terminationLine, writeTerminationMessage } from "./termination.ts";
import pkg from "../package.json" with { type: "json" };

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port);
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

async function loadInto(
  config: ServeConfig,
  plane: DataPlane,
  metrics: ServingMetrics,
  unservable: (reason: string) => void,
): Promise<WorkerPool | undefined> {
  try {
    // A pod sees every core of its node (the operator sets no CPU limit), so it sizes itself by the
    // cores it requested: a 1-CPU pod on a 64-core node must not start 64 workers, each with the model.
    const machine = availableParallelism();
    const cores = config.cpus > 0 ? Math.min(config.cpus, machine) : machine;
    const tensorflowThreads = defaultTensorflowThreads(process.env, cores);
    const { pool, ready, workers } = await WorkerPool.start(
      { modelPath: config.modelDir, format: config.modelFormat, backend: config.backend },
      config.workers > 0 ? config.workers : cores,
      {
        onWorkerExit: (reason, cause) => {
          logger.error({ reason, cause }, "Lost an inference worker; starting a replacement");
          metrics.workerReplaced(cause);
        },
        onWorkerRestart: (error) => {
          if (error === undefined) {
            metrics.workers.inc();
            return;
          }
          logger.error({ error }, "Failed to restart an inference worker");
        },
        onExhausted: unservable,
      },
      // A batch still running at twice the request timeout has outlived every request in it by a
      // whole timeout: nothing waits for it, and its worker is taken to be hung.
      2 * config.requestTimeoutMs,
    );
    for (const warning of ready.warnings) logger.warn({ warning }, "Model warm-up warning");
    metrics.loadSeconds.set(ready.loadSeconds);
    metrics.backend.set({ backend: ready.backend }, 1);
    metrics.workers.set(workers);
    plane.attach(pool, ready.platform, ready.signature, ready.batchable);
    logger.info(
      {
        model: config.servedName,
        version: config.modelVersion,
        backend: ready.backend,
        skippedBackends: ready.skipped,
        workers,
        // The cores it sized itself by: the container's CPU request (MAAS_CPUS) if set, at most the machine's.
        cores,
        machineCores: machine,
        ...(ready.backend.startsWith("tensorflow") ? { tensorflowThreads } : {}),
        batchable: ready.batchable,
        loadSeconds: ready.loadSeconds,
        inputs: ready.signature.inputs,
        outputs: ready.signature.outputs,
      },
      "Loaded and warmed up the model",
    );
    return pool;
  } catch (err) {
    unservable(`Failed to load the model from ${config.modelDir}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

/** Runs the server until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runServe(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { config, problems } = readServeConfig(env, readMemoryLimits());
  const metrics = new ServingMetrics(config.deployment, config.namespace, config.servedName);
  const plane = new DataPlane({
    name: config.servedName,
    version: config.modelVersion,
    maxBatchSize: config.maxBatchSize,
    maxDelayMs: config.maxBatchDelayMs,
    maxQueue: config.maxQueue,
    requestTimeoutMs: config.requestTimeoutMs,
    bodyMemoryBytes: config.bodyMemoryBytes,
    maxBodiesPerClient: config.maxBodiesPerClient,
    observer: metrics,
  });
  let draining = false;
  const app = createApp({
    plane,
    metrics,
    limits: { maxBytes: config.maxBodyBytes, timeoutMs: config.bodyTimeoutMs, idleTimeoutMs: config.bodyIdleTimeoutMs },
    serverVersion: pkg.version,
    log: logger,
    draining: () => draining,
  });
  const http = createServer(app);
  // Node's own request timeout answers with a bare 408; keep it behind ours, which explains itself.
  http.requestTimeout = config.bodyTimeoutMs + config.requestTimeoutMs + 5_000;
  http.headersTimeout = Math.min(60_000, http.requestTimeout);
  const metricsServer = createMetricsServer(metrics);
  let httpPort: number;
  let metricsPort: number;
  try {
    httpPort = await listen(http, config.httpPort);
    metricsPort = await listen(metricsServer, config.metricsPort);
  } catch (err) {
    logger.fatal({ err }, "Failed to listen");
    return 1;
  }
  logger.info(
    {
      httpPort,
      metricsPort,
      model: config.servedName,
      version: config.modelVersion,
      bodyMemoryBytes: config.bodyMemoryBytes,
      bodyMemoryFrom: config.bodyMemorySource,
    },
    "Listening",
  );
  if (config.bodyMemoryBytes < config.maxBodyBytes) {
    logger.warn(
      { bodyMemoryBytes: config.bodyMemoryBytes, maxBodyBytes: config.maxBodyBytes },
      "The memory budget for request bodies is smaller than the largest body allowed; larger bodies get 413",
    );
  }

  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => {
      resolve("SIGTERM");
    });
    process.once("SIGINT", () => {
      resolve("SIGINT");
    });
  });
  // A model that cannot be served (it did not load, or every worker died and none restarts):
  // standalone, the server stays up and not ready with the reason; under the operator it exits 1
  // with the reason in its termination message, so the kubelet retries and the status quotes it.
  const gaveUp = Promise.withResolvers<"gave-up">();
  const unservable = (reason: string): void => {
    plane.fail(reason);
    if (!config.exitOnLoadFailure) {
      logger.error({ reason }, "Cannot serve the model; serving not-ready until the pod is replaced");
      return;
    }
    logger.error({ reason }, "Cannot serve the model; exiting");
    const line = terminationLine(TerminationPrefixes.loadFailed, reason);
    void writeTerminationMessage(config.terminationMessagePath, line, logger).then(() => {
      gaveUp.resolve("gave-up");
    });
  };
  let loading: Promise<WorkerPool | undefined>;
  if (problems.length > 0) {
    unservable(`Invalid configuration: ${problems.join("; ")}`);
    loading = Promise.resolve(undefined);
  } else {
    loading = loadInto(config, plane, metrics, unservable);
  }

  const received = await Promise.race([signal, gaveUp.promise]);
  if (received === "gave-up") {
    await (await loading)?.close();
    http.close();
    http.closeAllConnections();
    metricsServer.close();
    metricsServer.closeAllConnections();
    return 1;
  }
  const started = performance.now();
  // Not ready from now on (responses ask clients to reconnect elsewhere), but still serving: the
  // endpoints controller, kube-proxy and ingresses take a moment to stop sending us traffic, and a
  // listener closed before then turns their requests into connection errors.
  draining = true;
  if (config.shutdownDelayMs > 0) {
    logger.info({ signal: received, delayMs: config.shutdownDelayMs }, "Shutting down: not ready, still serving");
    await new Promise((resolve) => setTimeout(resolve, config.shutdownDelayMs));
  }
  logger.info({ signal: received, accepted: plane.accepted }, "Draining: stopped accepting connections");
  // Stop accepting connections; idle keep-alive connections close now, busy ones after their response
  // (which carries Connection: close).
  const closed = new Promise<void>((resolve) =>
    http.close(() => {
      resolve();
    }),
  );
  http.closeIdleConnections();
  let timedOut = false;
  const deadline = new Promise<void>((resolve) =>
    setTimeout(() => {
      timedOut = true;
      resolve();
    }, config.drainTimeoutMs).unref(),
  );
  await Promise.race([Promise.all([plane.drain(), closed]), deadline]);
  if (timedOut) {
    logger.warn(
      { accepted: plane.accepted, drainTimeoutMs: config.drainTimeoutMs },
      "Drain deadline passed; closing remaining connections",
    );
    http.closeAllConnections();
  }
  // A SIGTERM during loading lands here before the workers are up; they are stopped once started.
  const pool = await loading;
  await pool?.close();
  metricsServer.close();
  metricsServer.closeAllConnections();
  logger.info({ seconds: (performance.now() - started) / 1000 }, "Drained and stopped");
  return 0;
}
