/** Pure reading of the `fetch` command's environment into a validated configuration. */
import { Defaults, Env, ModelFormats, Paths } from "../contract.ts";
import { FetchError } from "./errors.ts";
import { isSha256Hex } from "./digest.ts";
import { parseModelUri, type ModelLocation } from "./uri.ts";

export interface FetchConfig {
  readonly uri: string;
  readonly location: ModelLocation;
  /** Absolute directory the finished model is renamed to. */
  readonly targetDir: string;
  /** Lowercase hex digest to verify, when given (see digest.ts for what it covers). */
  readonly sha256: string | undefined;
  readonly terminationMessagePath: string;
  /** Where a pvc:// claim is mounted. */
  readonly sourceDir: string;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly deadlineMs: number;
  readonly retries: number;
  readonly backoffMs: number;
  readonly http: { readonly authorization: string | undefined };
  readonly s3: {
    readonly region: string | undefined;
    readonly endpoint: string | undefined;
    readonly accessKeyId: string | undefined;
    readonly secretAccessKey: string | undefined;
    readonly sessionToken: string | undefined;
  };
}

/** Where the one-line failure reason goes; usable before the rest of the configuration is known to be valid. */
export function terminationMessagePath(env: NodeJS.ProcessEnv): string {
  return nonEmpty(env[Env.terminationMessagePath]) ?? Paths.terminationMessage;
}

/** Every secret value the environment carries, so messages can be scrubbed of them whatever their source. */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const values = [env[Env.httpAuthorization], env[Env.awsSecretAccessKey], env[Env.awsSessionToken]]
    .filter((v): v is string => v !== undefined && v !== "")
    .flatMap((v) => {
      // "Bearer abc" leaks "abc" even if the scheme word is cut off, so scrub the credential part too.
      const parts = v.trim().split(/\s+/);
      return parts.length > 1 ? [v, v.trim(), parts.slice(1).join(" ")] : [v];
    });
  return [...new Set(values)];
}

/** Parses and validates the environment; throws a FetchError naming the variable at fault. */
export function parseFetchConfig(env: NodeJS.ProcessEnv): FetchConfig {
  // Taken as written (not trimmed): the URI's grammar is the CRD's, which admits no whitespace.
  const uri = env[Env.modelUri];
  if (uri === undefined || uri === "") throw new FetchError(`${Env.modelUri} is not set`);
  const format = nonEmpty(env[Env.modelFormat]);
  if (format !== undefined && !(ModelFormats as readonly string[]).includes(format)) {
    throw new FetchError(`${Env.modelFormat} must be one of ${ModelFormats.join(", ")}, got "${format}"`);
  }
  const location = parseModelUri(uri, format);
  const targetDir = nonEmpty(env[Env.modelDir]) ?? Paths.fetchedModelDir;
  if (!targetDir.startsWith("/")) throw new FetchError(`${Env.modelDir} must be an absolute path, got "${targetDir}"`);
  if (targetDir.replace(/\/+$/, "") === "") throw new FetchError(`${Env.modelDir} must not be the root directory`);
  const sourceDir = nonEmpty(env[Env.modelSourceDir]) ?? Paths.modelSourceDir;
  if (!sourceDir.startsWith("/")) {
    throw new FetchError(`${Env.modelSourceDir} must be an absolute path, got "${sourceDir}"`);
  }
  const shaRaw = nonEmpty(env[Env.modelSha256]);
  if (shaRaw !== undefined && !isSha256Hex(shaRaw)) {
    throw new FetchError(`${Env.modelSha256} must be 64 hex characters, got ${shaRaw.length} characters`);
  }
  return {
    uri,
    location,
    targetDir: targetDir.length > 1 ? targetDir.replace(/\/+$/, "") : targetDir,
    sha256: shaRaw?.toLowerCase(),
    terminationMessagePath: terminationMessagePath(env),
    sourceDir,
    maxBytes: intVar(env, Env.fetchMaxBytes, Defaults.fetchMaxBytes, 1),
    timeoutMs: intVar(env, Env.fetchTimeoutMs, Defaults.fetchTimeoutMs, 1),
    deadlineMs: intVar(env, Env.fetchDeadlineMs, Defaults.fetchDeadlineMs, 1),
    retries: intVar(env, Env.fetchRetries, Defaults.fetchRetries, 0, 100),
    backoffMs: intVar(env, Env.fetchBackoffMs, Defaults.fetchBackoffMs, 0),
    http: { authorization: nonEmpty(env[Env.httpAuthorization]) },
    s3: {
      region: nonEmpty(env[Env.awsRegion]),
      endpoint: nonEmpty(env[Env.s3Endpoint]),
      accessKeyId: nonEmpty(env[Env.awsAccessKeyId]),
      secretAccessKey: nonEmpty(env[Env.awsSecretAccessKey]),
      sessionToken: nonEmpty(env[Env.awsSessionToken]),
    },
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  const t = v?.trim();
  return t === undefined || t === "" ? undefined : t;
}

function intVar(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new FetchError(`${name} must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new FetchError(`${name} must be between ${min} and ${max}, got ${raw}`);
  }
  return n;
}
