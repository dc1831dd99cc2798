/**
 * A small client for Prometheus' HTTP API: instant queries that must answer one finite,
 * non-negative number. Every way that can fail is a `PrometheusError` whose `reason` is what the
 * ModelDeployment's ScalingActive condition says, and whose message names Prometheus and the cause.
 */
import { HoldingReasons, type HoldingReason } from "../api/index.ts";

/** Why a query gave no usable number, finer than the condition reason (for logs and metrics). */
export const QueryFailures = {
  unreachable: "unreachable",
  httpError: "http_error",
  queryError: "query_error",
  badResponse: "bad_response",
  empty: "empty",
  multipleSeries: "multiple_series",
  notANumber: "not_a_number",
  nonFinite: "non_finite",
  negative: "negative",
} as const;
export type QueryFailure = (typeof QueryFailures)[keyof typeof QueryFailures];

const reasonOf: Record<QueryFailure, HoldingReason> = {
  unreachable: HoldingReasons.PrometheusUnreachable,
  http_error: HoldingReasons.PrometheusUnreachable,
  query_error: HoldingReasons.QueryFailed,
  bad_response: HoldingReasons.QueryFailed,
  multiple_series: HoldingReasons.QueryFailed,
  empty: HoldingReasons.MetricMissing,
  not_a_number: HoldingReasons.MetricInvalid,
  non_finite: HoldingReasons.MetricInvalid,
  negative: HoldingReasons.MetricInvalid,
};

export class PrometheusError extends Error {
  override readonly name = "PrometheusError";
  readonly failure: QueryFailure;

  constructor(failure: QueryFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.failure = failure;
  }

  /** The ScalingActive reason this failure reads as. */
  get reason(): HoldingReason {
    return reasonOf[this.failure];
  }
}

export interface PrometheusClientOptions {
  /** Base URL, e.g. http://prometheus.monitoring.svc:9090 (a path prefix such as /prometheus is kept). */
  url: string;
  timeoutMs?: number;
  /** Answers larger than this are refused unread (a query that returns every series of a big cluster). */
  maxResponseBytes?: number;
}

interface ApiResponse {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

type Sample = [number, string];

/** Instant queries against one Prometheus. */
export class PrometheusClient {
  readonly url: string;
  readonly #endpoint: URL;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;

  constructor(options: PrometheusClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new Error(`--prometheus-url ${JSON.stringify(options.url)} is not a URL (e.g. http://prometheus:9090)`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new Error(`--prometheus-url must be http:// or https://, got ${JSON.stringify(options.url)}`);
    }
    this.url = options.url.replace(/\/+$/, "");
    this.#endpoint = new URL(`${base.pathname.replace(/\/+$/, "")}/api/v1/query`, base);
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  /** The value of `query` now: one sample (a scalar, or a vector of exactly one series). */
  async query(query: string, signal?: AbortSignal): Promise<number> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    try {
      response = await fetch(this.#endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ query }).toString(),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      const cause = timeout.aborted
        ? `no answer within ${this.#timeoutMs / 1000}s`
        : describe(err instanceof Error && err.cause instanceof Error ? err.cause : err);
      throw new PrometheusError(QueryFailures.unreachable, `Prometheus at ${this.url} is unreachable: ${cause}`, {
        cause: err,
      });
    }
    const text = await this.#read(response, timeout);
    let body: ApiResponse | undefined;
    try {
      body = JSON.parse(text) as ApiResponse;
    } catch {
      body = undefined;
    }
    if (body?.status === "error") {
      // 400 bad_data (a parse error) and 422 execution errors are the query's fault; 503 and other
      // server errors are Prometheus' own trouble (overloaded, starting up).
      const failure = response.status >= 500 ? QueryFailures.httpError : QueryFailures.queryError;
      const what = failure === QueryFailures.queryError ? "refused the query" : `answered ${response.status}`;
      throw new PrometheusError(failure, `Prometheus ${what}: ${body.errorType ?? "error"}: ${oneLine(body.error)}`);
    }
    if (!response.ok) {
      throw new PrometheusError(
        QueryFailures.httpError,
        `Prometheus at ${this.url} answered ${response.status} ${response.statusText}: ${oneLine(text)}`,
      );
    }
    if (body?.status !== "success" || body.data === undefined) {
      throw new PrometheusError(
        QueryFailures.badResponse,
        `Prometheus at ${this.url} answered with something that is not its query API's JSON: ${oneLine(text)}`,
      );
    }
    return sampleValue(body.data);
  }

  async #read(response: Response, timeout: AbortSignal): Promise<string> {
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > this.#maxBytes) {
      await response.body?.cancel();
      throw new PrometheusError(QueryFailures.multipleSeries, tooLarge(this.#maxBytes));
    }
    const body = response.body as AsyncIterable<Uint8Array> | null;
    if (!body) return "";
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        size += chunk.byteLength;
        if (size > this.#maxBytes) throw new PrometheusError(QueryFailures.multipleSeries, tooLarge(this.#maxBytes));
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof PrometheusError) throw err;
      const cause = timeout.aborted ? `no answer within ${this.#timeoutMs / 1000}s` : describe(err);
      throw new PrometheusError(QueryFailures.unreachable, `Prometheus at ${this.url} is unreachable: ${cause}`, {
        cause: err,
      });
    }
    return Buffer.concat(chunks).toString("utf8");
  }
}

const tooLarge = (max: number) =>
  `the query's answer is larger than ${max} bytes: it must return a single sample (aggregate it, e.g. with sum())`;

/** The one number a query result holds, or why it does not hold exactly one usable number. */
export function sampleValue(data: { resultType?: string; result?: unknown }): number {
  let sample: unknown;
  if (data.resultType === "scalar") {
    sample = data.result;
  } else if (data.resultType === "vector" && Array.isArray(data.result)) {
    const series = data.result as { metric?: Record<string, string>; value?: unknown }[];
    if (series.length === 0) {
      throw new PrometheusError(
        QueryFailures.empty,
        "the query returned no sample: no serving pod has been scraped in the window yet, or the query matches nothing",
      );
    }
    if (series.length > 1) {
      const labels = series
        .slice(0, 3)
        .map((s) => JSON.stringify(s.metric ?? {}))
        .join(", ");
      throw new PrometheusError(
        QueryFailures.multipleSeries,
        `the query returned ${series.length} series (${labels}${series.length > 3 ? ", …" : ""}); it must return one: aggregate it, e.g. with sum() or avg()`,
      );
    }
    sample = series[0]!.value;
  } else {
    throw new PrometheusError(
      QueryFailures.queryError,
      `the query returned a ${data.resultType ?? "missing"} result; it must return an instant vector of one series or a scalar`,
    );
  }
  const raw = Array.isArray(sample) ? (sample as Sample)[1] : undefined;
  if (typeof raw !== "string") {
    throw new PrometheusError(
      QueryFailures.notANumber,
      `the query's sample is not a number: ${JSON.stringify(sample)}`,
    );
  }
  // Prometheus writes NaN, +Inf and -Inf as such; anything else must be a decimal number.
  const special = /^(NaN|[+-]Inf)$/.test(raw);
  const value = special ? NaN : Number(raw);
  if (!special && (raw.trim() === "" || Number.isNaN(value))) {
    throw new PrometheusError(QueryFailures.notANumber, `the query's sample is not a number: ${JSON.stringify(raw)}`);
  }
  if (!Number.isFinite(value)) {
    throw new PrometheusError(
      QueryFailures.nonFinite,
      `the query's sample is ${raw}, not a finite number (a division by zero, or no requests in the window?)`,
    );
  }
  if (value < 0) {
    throw new PrometheusError(QueryFailures.negative, `the query's sample is ${raw}; a load metric cannot be negative`);
  }
  return value;
}

function oneLine(s: string | undefined, max = 300): string {
  const t = (s ?? "").replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}
