import { pino, type Logger, type LoggerOptions, type DestinationStream } from "pino";

export type { Logger } from "pino";

/**
 * Paths pino replaces with "[redacted]" wherever they appear one or two levels down. A Secret's
 * data, tokens and auth headers must never reach a log line, even when someone logs a whole object
 * or request by mistake; the operator itself never reads Secret values.
 */
const redactPaths = [
  "data",
  "stringData",
  "*.data",
  "*.stringData",
  "token",
  "*.token",
  "password",
  "*.password",
  "authorization",
  "*.authorization",
  "*.Authorization",
  "*.headers.authorization",
  "*.headers.Authorization",
  "*.keyData",
  "*.certData",
];

/**
 * The operator's root logger: JSON lines on stdout (or `destination`), level from the argument.
 * Every line carries `component`; object-scoped lines carry `object` ("namespace/name") and `kind`.
 */
export function createLogger(level = "info", destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { component: "maas-operator" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: "[redacted]" },
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** A child logger keyed by object, so `jq 'select(.object=="ml/sentiment")'` follows one object's story. */
export function objectLogger(log: Logger, kind: string, key: string): Logger {
  return log.child({ kind, object: key });
}

/** A logger that drops everything, for tests and libraries used without one. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
