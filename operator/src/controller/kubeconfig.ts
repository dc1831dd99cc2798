/**
 * Where the API server is and how to prove who we are: from a kubeconfig file or from the pod's
 * service account. Only what an operator needs — a server URL, a CA, a client certificate or a
 * bearer token (read again as the file rotates) — so the operator does not load a general client
 * library (client-node's KubeConfig pulls in its whole generated API, ~80 MiB of resident memory,
 * to read a few fields). Credential plugins (`exec`, `auth-provider`) and basic auth are refused
 * with an error naming them: in a cluster the operator uses its service account.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";

export interface ClusterAccess {
  /** The API server's base URL, e.g. https://10.0.0.1:443 (no trailing slash). */
  readonly server: string;
  /** PEM bundle the server's certificate must chain to; undefined: the system's CAs. */
  readonly ca?: Buffer | undefined;
  /** PEM client certificate and key (mutual TLS). */
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
  /** A fixed bearer token, or a file holding one (read again every `tokenRefreshMs`). */
  readonly token?: string | undefined;
  readonly tokenFile?: string | undefined;
  readonly insecureSkipTlsVerify?: boolean | undefined;
  /** The name to check the server's certificate against, when it differs from the URL's host. */
  readonly tlsServerName?: string | undefined;
  /** Where this came from, for error messages ("kubeconfig /x (context y)", "in-cluster service account"). */
  readonly source: string;
}

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** The pod's service account: the API server from the environment, its CA and rotating token from the mounted files. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): ClusterAccess {
  const host = env["KUBERNETES_SERVICE_HOST"];
  const port = env["KUBERNETES_SERVICE_PORT"] ?? "443";
  if (!host) throw new Error("not in a cluster: KUBERNETES_SERVICE_HOST is not set");
  const tokenFile = `${dir}/token`;
  if (!existsSync(tokenFile)) throw new Error(`not in a cluster: no service account token at ${tokenFile}`);
  const caFile = `${dir}/ca.crt`;
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca: existsSync(caFile) ? readFileSync(caFile) : undefined,
    tokenFile,
    source: "the in-cluster service account",
  };
}

/**
 * The operator's connection: the --kubeconfig flag's file if given; else $KUBECONFIG (its first
 * file that exists); else the pod's service account; else ~/.kube/config.
 */
export function defaultAccess(kubeconfigFlag?: string, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  if (kubeconfigFlag) return loadKubeconfig(kubeconfigFlag);
  const fromEnv = (env["KUBECONFIG"] ?? "")
    .split(":")
    .filter(Boolean)
    .find((f) => existsSync(f));
  if (fromEnv) return loadKubeconfig(fromEnv);
  if (env["KUBERNETES_SERVICE_HOST"] && existsSync(`${SERVICE_ACCOUNT_DIR}/token`)) return inClusterAccess(env);
  const home = resolve(homedir(), ".kube", "config");
  if (existsSync(home)) return loadKubeconfig(home);
  throw new Error(
    "no cluster to talk to: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account token",
  );
}

type Entry = Record<string, unknown>;

interface Named {
  name?: unknown;
  cluster?: Entry;
  user?: Entry;
  context?: Entry;
}

/** Reads the current context (or `context`) of a kubeconfig file; throws an error naming what is missing or unsupported. */
export function loadKubeconfig(file: string, context?: string): ClusterAccess {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return accessFromKubeconfig(doc, dirname(file), file, context);
}

/** The same from a parsed kubeconfig document; relative file paths resolve against `baseDir`. Pure apart from reading the files it names. */
export function accessFromKubeconfig(doc: unknown, baseDir: string, file: string, context?: string): ClusterAccess {
  const config = (doc ?? {}) as Record<string, unknown>;
  const contextName = context ?? str(config["current-context"]);
  const where = `kubeconfig ${file}`;
  if (!contextName) throw new Error(`${where}: no current-context`);
  const ctx = find(config["contexts"], contextName, "context");
  if (!ctx) throw new Error(`${where}: context ${JSON.stringify(contextName)} not found`);
  const clusterName = str(ctx["cluster"]);
  const userName = str(ctx["user"]);
  const cluster = clusterName ? find(config["clusters"], clusterName, "cluster") : undefined;
  if (!cluster) throw new Error(`${where}: cluster ${JSON.stringify(clusterName)} of context ${contextName} not found`);
  const user = (userName ? find(config["users"], userName, "user") : undefined) ?? {};
  const server = str(cluster["server"])?.replace(/\/+$/, "");
  if (!server) throw new Error(`${where}: cluster ${clusterName} has no server`);
  for (const unsupported of ["exec", "auth-provider", "username", "password"]) {
    if (user[unsupported] !== undefined) {
      throw new Error(
        `${where}: user ${String(userName)} uses ${unsupported}, which maas-operator does not support; use a client certificate or a token (in a cluster the operator uses its service account)`,
      );
    }
  }
  const at = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(baseDir, p));
  const bytes = (data: unknown, path: unknown, what: string): Buffer | undefined => {
    const inline = str(data);
    if (inline) return Buffer.from(inline, "base64");
    const p = at(str(path));
    if (!p) return undefined;
    try {
      return readFileSync(p);
    } catch (err) {
      throw new Error(`${where}: reading the ${what} ${p}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  };
  const cert = bytes(user["client-certificate-data"], user["client-certificate"], "client certificate");
  const key = bytes(user["client-key-data"], user["client-key"], "client key");
  if ((cert === undefined) !== (key === undefined)) {
    throw new Error(`${where}: user ${String(userName)} has a client certificate without a key, or a key without one`);
  }
  return {
    server,
    ca: bytes(cluster["certificate-authority-data"], cluster["certificate-authority"], "certificate authority"),
    cert,
    key,
    token: str(user["token"]),
    tokenFile: at(str(user["tokenFile"])),
    insecureSkipTlsVerify: cluster["insecure-skip-tls-verify"] === true,
    tlsServerName: str(cluster["tls-server-name"]),
    source: `${where} (context ${contextName})`,
  };
}

function find(list: unknown, name: string, field: "cluster" | "user" | "context"): Entry | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = (list as (Named | null)[]).find((e) => e?.name === name);
  return entry?.[field];
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}
