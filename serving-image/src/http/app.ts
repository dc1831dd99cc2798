/**
 * The HTTP layer: a thin express app that maps TF Serving REST (v1) and Open Inference Protocol (v2)
 * routes onto the data plane. Parsing and encoding live in protocol/; admission and batching in the
 * data plane; this file only moves bytes and status codes.
 */
import express, { type Request, type Response } from "express";
import type { DataPlane } from "../dataplane.ts";
import type { Logger } from "../log.ts";
import { ErrorCodes, ServingError, invalidArgument, toServingError } from "../protocol/errors.ts";
import type { ModelRef } from "../protocol/model-info.ts";
import { readJson } from "../protocol/json-reader.ts";
import {
  decodeV1Predict,
  encodeV1Metadata,
  encodeV1Predict,
  encodeV1Status,
  parseV1Route,
  v1NotFound,
  v1UnknownLabel,
} from "../protocol/v1.ts";
import {
  decodeV2Infer,
  encodeV2Infer,
  encodeV2ModelMetadata,
  encodeV2ServerMetadata,
  inferenceHeaderContentLength,
  parseV2Route,
} from "../protocol/v2.ts";
import { bodyLeftUnread, closeAfterResponse, declaredLength, readBody, type BodyLimits } from "./body.ts";
import type { ServingMetrics } from "./metrics.ts";

export interface AppDeps {
  readonly plane: DataPlane;
  readonly metrics: ServingMetrics;
  readonly limits: BodyLimits;
  readonly serverVersion: string;
  readonly log: Logger;
  /** True once SIGTERM arrived: responses ask clients to close their connections. */
  readonly draining: () => boolean;
}

type Protocol = "v1" | "v2";

function sendJson(res: Response, status: number, body: unknown): void {
  res
    .status(status)
    .type("application/json")
    .send(typeof body === "string" ? body : JSON.stringify(body));
}

/**
 * Answers with `{"error": …}`. A request refused before its body was read gets its connection closed
 * (saying so), rather than the server reading a body it has no use for.
 */
function sendError(req: Request, res: Response, err: ServingError): void {
  if (err.retryAfterSeconds !== undefined) res.setHeader("retry-after", String(err.retryAfterSeconds));
  if (bodyLeftUnread(req)) closeAfterResponse(req, res);
  sendJson(res, err.httpStatus, { error: err.message });
}

function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw invalidArgument("Request body is empty; expected a JSON object");
  try {
    return readJson(body);
  } catch (err) {
    throw invalidArgument(`Malformed JSON in request body: ${(err as Error).message}`);
  }
}

/** Aborts when the client closes the connection before its response is complete. */
function gone(res: Response): AbortSignal {
  const ac = new AbortController();
  if (res.destroyed) ac.abort();
  res.once("close", () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

function checkEncoding(req: Request): void {
  const enc = req.headers["content-encoding"];
  if (enc !== undefined && enc !== "identity") {
    throw new ServingError(
      ErrorCodes.unsupportedMediaType,
      `Content-Encoding ${enc} is not supported; send the body uncompressed`,
    );
  }
}

/** Builds the express app serving both protocols. */
export function createApp(deps: AppDeps): express.Express {
  const { plane, metrics, limits, log } = deps;
  const servedName = plane.info().name;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  const v1 = async (req: Request, res: Response): Promise<void> => {
    const route = parseV1Route(req.method, req.path);
    const ref: ModelRef = route.ref;
    const resolution = plane.resolve(ref);
    const servingKind = route.kind === "status" ? "status" : "serving";
    if (resolution === "unknown-label") throw v1UnknownLabel(ref.label!);
    if (resolution === "unknown-model") throw v1NotFound(servingKind, ref, "model");
    if (resolution === "unknown-version") throw v1NotFound(servingKind, ref, "version");
    res.locals["model"] = servedName;
    const info = plane.info();
    switch (route.kind) {
      case "status":
        sendJson(res, 200, encodeV1Status(info));
        return;
      case "metadata":
        sendJson(res, 200, encodeV1Metadata(info, plane.assertAvailable()));
        return;
      case "classify":
      case "regress":
        throw new ServingError(
          ErrorCodes.unimplemented,
          `:${route.kind} is not supported for TensorFlow.js models; use :predict`,
        );
      case "predict": {
        checkEncoding(req);
        const signature = plane.assertAvailable();
        const admission = plane.admit(declaredLength(req, limits), req.socket.remoteAddress);
        let outputs;
        let format;
        try {
          const body = await readBody(req, limits, admission);
          const request = decodeV1Predict(parseJsonBody(body), signature);
          format = request.format;
          outputs = await plane.infer(request.inputs, admission, gone(res));
        } finally {
          admission.release();
        }
        sendJson(res, 200, encodeV1Predict(format, outputs));
        return;
      }
    }
  };

  const v2 = async (req: Request, res: Response): Promise<void> => {
    const route = parseV2Route(req.method, req.path);
    if (route === undefined) throw new ServingError(ErrorCodes.notFound, `Not found: ${req.method} ${req.path}`);
    switch (route.kind) {
      case "live":
        sendJson(res, 200, { live: true });
        return;
      case "ready":
        if (plane.ready && !deps.draining()) sendJson(res, 200, { ready: true });
        else sendJson(res, 503, { ready: false, error: plane.info().reason || "The server is shutting down" });
        return;
      case "server-metadata":
        sendJson(res, 200, encodeV2ServerMetadata(deps.serverVersion));
        return;
    }
    const ref: ModelRef =
      route.version === undefined ? { name: route.name } : { name: route.name, version: route.version };
    const resolution = plane.resolve(ref);
    if (resolution !== "ok") {
      const which = resolution === "unknown-version" ? `'${ref.name}' version ${ref.version ?? ""}` : `'${ref.name}'`;
      throw new ServingError(ErrorCodes.notFound, `Request for unknown model: ${which} is not found`);
    }
    res.locals["model"] = servedName;
    const info = plane.info();
    switch (route.kind) {
      case "model-ready":
        if (plane.ready) sendJson(res, 200, { name: info.name, ready: true });
        else sendJson(res, 503, { name: info.name, ready: false, error: info.reason });
        return;
      case "model-metadata":
        sendJson(res, 200, encodeV2ModelMetadata(info, plane.assertAvailable()));
        return;
      case "infer": {
        checkEncoding(req);
        const signature = plane.assertAvailable();
        const rawHeader = req.headers[inferenceHeaderContentLength];
        let headerLength: number | undefined;
        if (rawHeader !== undefined) {
          const text = Array.isArray(rawHeader) ? rawHeader[0]! : rawHeader;
          if (!/^\d+$/.test(text.trim()))
            throw invalidArgument(`Inference-Header-Content-Length must be a non-negative integer, got "${text}"`);
          headerLength = Number(text.trim());
        }
        const admission = plane.admit(declaredLength(req, limits), req.socket.remoteAddress);
        let outputs;
        let request;
        try {
          const body = await readBody(req, limits, admission, { alignAt: headerLength });
          if (body.length === 0) throw invalidArgument("Request body is empty; expected a JSON infer request");
          request = decodeV2Infer(body, headerLength, info.name, signature);
          outputs = await plane.infer(request.inputs, admission, gone(res));
        } finally {
          admission.release();
        }
        const encoded = encodeV2Infer(info.name, info.version, request.id, request.outputs, outputs);
        if (encoded.headerLength !== undefined) {
          res.setHeader("inference-header-content-length", String(encoded.headerLength));
          res.status(200).type("application/octet-stream").send(encoded.body);
        } else {
          res.status(200).type("application/json").send(encoded.body);
        }
        return;
      }
    }
  };

  app.use((req: Request, res: Response) => {
    const path = req.path.toLowerCase();
    const protocol: Protocol | undefined =
      path.startsWith("/v1/") || path === "/v1" ? "v1" : path.startsWith("/v2/") || path === "/v2" ? "v2" : undefined;
    if (deps.draining()) res.setHeader("connection", "close");
    const probe = path === "/v2/health/live" || path === "/v2/health/ready";
    const counted = protocol !== undefined && !probe;
    const started = performance.now();
    if (counted) {
      metrics.inflight.inc();
      res.once("close", () => {
        metrics.inflight.dec();
        // Unknown model names would make label values unbounded; they share one value.
        const model = res.locals["model"] === servedName ? servedName : "_other";
        // A client that left before its answer is counted as nginx does, not as the 200 never sent.
        const code = res.writableFinished ? String(res.statusCode) : "499";
        metrics.requests.inc({ model, protocol, code });
        metrics.duration.observe({ model, protocol }, (performance.now() - started) / 1000);
      });
    }
    const handler = protocol === "v1" ? v1 : protocol === "v2" ? v2 : undefined;
    if (handler === undefined) {
      sendError(
        req,
        res,
        new ServingError(ErrorCodes.notFound, `Not found: ${req.method} ${req.path}; maas-serving answers /v1 and /v2`),
      );
      return;
    }
    handler(req, res).catch((err: unknown) => {
      const e = toServingError(err);
      if (e.code === ErrorCodes.internal) log.error({ err, path: req.path }, "Failed to serve a request");
      if (!res.headersSent) sendError(req, res, e);
      else res.destroy();
    });
  });
  return app;
}
