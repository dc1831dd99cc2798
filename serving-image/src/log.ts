/**
 * Structured JSON logs on stdout (pino), one logger per process.
 */
import { pino } from "pino";

export const logger = pino({ base: { component: "maas-serving" }, timestamp: pino.stdTimeFunctions.isoTime });
export type Logger = typeof logger;
