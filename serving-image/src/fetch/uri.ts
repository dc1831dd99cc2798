/**
 * Pure parsing of model URIs and the relative paths a model.json refers to. No I/O here: everything
 * is unit-tested and the sources only receive values this module already validated.
 */
import { FetchError } from "./errors.ts";

export type ModelLocation =
  | { readonly scheme: "http" | "https"; readonly url: URL }
  | { readonly scheme: "s3"; readonly bucket: string; readonly key: string }
  | { readonly scheme: "file"; readonly path: string }
  | { readonly scheme: "pvc"; readonly claim: string; readonly path: string };

const supported = "https, http, s3, pvc, file";
const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// S3 bucket names: 3-63 chars of lowercase letters, digits, dots and hyphens (legacy names are not needed here).
const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Secrets a URI carries: its userinfo password and its query parameter values (presigned URLs). */
export function uriSecrets(uri: string): string[] {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    return [];
  }
  const out = [...url.searchParams.values()];
  if (url.password !== "") out.push(url.password, decodeURIComponent(url.password));
  return out;
}

/** Parses `spec.model.uri` into a location, or throws a FetchError that names what is wrong with it. */
export function parseModelUri(raw: string): ModelLocation {
  const uri = raw.trim();
  if (uri === "") throw new FetchError("model URI is empty");
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  if (!schemeMatch) throw new FetchError(`model URI ${redactUri(uri)} has no scheme (supported: ${supported})`);
  const scheme = schemeMatch[1]!.toLowerCase();
  switch (scheme) {
    case "http":
    case "https": {
      const url = parseUrl(uri);
      if (url.hostname === "") throw new FetchError(`model URI ${redactUri(uri)} has no host`);
      if (url.pathname === "/" || url.pathname.endsWith("/")) {
        throw new FetchError(`model URI ${redactUri(uri)} must name a file (model.json or a single model file)`);
      }
      decodeURIComponentSafe(url.pathname, uri); // the file's name is decoded later: refuse bad escapes now
      return { scheme, url };
    }
    case "s3": {
      const rest = uri.slice("s3://".length);
      if (!uri.toLowerCase().startsWith("s3://"))
        throw new FetchError(`model URI ${uri} must look like s3://bucket/key`);
      const slash = rest.indexOf("/");
      const bucket = slash < 0 ? rest : rest.slice(0, slash);
      const key = slash < 0 ? "" : rest.slice(slash + 1);
      if (!bucketName.test(bucket)) throw new FetchError(`model URI ${uri} has an invalid bucket name "${bucket}"`);
      if (key === "" || key.endsWith("/")) {
        throw new FetchError(`model URI ${uri} must name an object (s3://bucket/prefix/model.json)`);
      }
      return { scheme, bucket, key };
    }
    case "gs":
      throw new FetchError(
        `gs:// model URIs are not supported yet; use the GCS XML API through s3://${uri.slice(5)} with ` +
          `AWS_ENDPOINT_URL_S3=https://storage.googleapis.com and HMAC keys as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`,
      );
    case "file": {
      const url = parseUrl(uri);
      if (url.host !== "" && url.host !== "localhost") {
        throw new FetchError(`model URI ${uri} names host "${url.host}"; file:// URIs must be local (file:///path)`);
      }
      const path = decodePath(url.pathname, uri);
      return { scheme, path: path === "/" ? path : path.replace(/\/+$/, "") };
    }
    case "pvc": {
      const rest = uri.slice("pvc://".length);
      if (!uri.toLowerCase().startsWith("pvc://"))
        throw new FetchError(`model URI ${uri} must look like pvc://claim/path`);
      const slash = rest.indexOf("/");
      const claim = slash < 0 ? rest : rest.slice(0, slash);
      if (!dns1123Label.test(claim)) {
        throw new FetchError(`model URI ${uri} has an invalid claim name "${claim}" (a DNS-1123 label)`);
      }
      const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
      if (path !== "") checkRelativePath(decodeURIComponentSafe(path, uri), `model URI ${uri}`);
      return { scheme, claim, path: path === "" ? "" : decodeURIComponentSafe(path, uri) };
    }
    default:
      throw new FetchError(`model URI scheme "${scheme}:" is not supported (supported: ${supported})`);
  }
}

/**
 * Checks a relative path taken from a URI or a model.json (weight shard paths): forward slashes, no
 * empty, "." or ".." segments, no leading slash, no backslash or control characters. Returns it unchanged.
 */
export function checkRelativePath(path: string, where: string): string {
  if (path === "") throw new FetchError(`${where}: empty path`);
  if (path.startsWith("/")) throw new FetchError(`${where}: path "${path}" must be relative`);
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(path))
    throw new FetchError(`${where}: path "${escape(path)}" has a forbidden character`);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path)) throw new FetchError(`${where}: path "${path}" must not be a URL`);
  for (const segment of path.split("/")) {
    if (segment === "" || segment === "." || segment === "..") {
      throw new FetchError(`${where}: path "${path}" must stay inside the model directory`);
    }
  }
  return path;
}

/** The directory part and file name of a slash-separated path ("a/b/model.json" → ["a/b", "model.json"]). */
export function splitPath(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf("/");
  return i < 0 ? { dir: "", name: path } : { dir: path.slice(0, i), name: path.slice(i + 1) };
}

/**
 * Removes what must never reach a log or the pod status from a URI: userinfo (user:password@) and the
 * values of query parameters (presigned URLs carry signatures and tokens there). Unparseable input is
 * returned with anything between "//" and "@" masked.
 */
export function redactUri(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri.replace(/\/\/[^/@]*@/, "//***@");
  }
  if (url.username === "" && url.password === "" && url.search === "") return uri;
  if (url.username !== "" || url.password !== "") {
    url.username = "***";
    url.password = "";
  }
  if (url.search !== "") {
    const names = [...new Set(url.searchParams.keys())];
    url.search = names.map((n) => `${encodeURIComponent(n)}=***`).join("&");
  }
  return url.toString().replaceAll("%2A%2A%2A", "***");
}

/**
 * Makes any text safe to log or report: every URL in it goes through redactUri, then every occurrence of
 * each known secret (of at least 4 characters) becomes "***". Library error messages may echo URLs.
 */
export function redactText(text: string, secrets: readonly (string | undefined)[]): string {
  return scrubSecrets(
    text.replace(/\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s"'<>]+/g, (m) => {
      // Punctuation that ends a sentence is not part of the URL.
      const tail = /[:;,.)]+$/.exec(m)?.[0] ?? "";
      return redactUri(m.slice(0, m.length - tail.length)) + tail;
    }),
    secrets,
  );
}

/** Replaces every occurrence of each secret (of at least 4 characters) in text with "***". */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.replaceAll(secret, "***");
  }
  return out;
}

function parseUrl(uri: string): URL {
  try {
    return new URL(uri);
  } catch {
    throw new FetchError(`model URI ${redactUri(uri)} is not a valid URL`);
  }
}

function decodePath(pathname: string, uri: string): string {
  const path = decodeURIComponentSafe(pathname, uri);
  if (path.split("/").includes("..")) throw new FetchError(`model URI ${uri} must not contain ".." segments`);
  return path;
}

function decodeURIComponentSafe(s: string, uri: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new FetchError(`model URI ${redactUri(uri)} has an invalid percent-encoding`);
  }
}

function escape(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}
