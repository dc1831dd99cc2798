/**
 * Pure parsing of model URIs and the relative paths a model.json refers to. No I/O here: everything
 * is unit-tested and the sources only receive values this module already validated.
 *
 * Which URIs are valid is decided by ../grammar.ts, the grammar the CRD enforces too, so a URI the
 * API server admitted always parses here and one it refused never does. The checks after it are a
 * safety net for paths: if the grammar ever let through a path that leaves its directory, they would
 * refuse it (and the test that feeds the same cases to the API server and to this parser would fail).
 */
import { modelSourceProblem, modelUriProblem } from "../grammar.ts";
import { FetchError } from "./errors.ts";

export type ModelLocation =
  /** `name` is the file's name: the last path segment, decoded. */
  | { readonly scheme: "http" | "https"; readonly url: URL; readonly name: string }
  | { readonly scheme: "s3"; readonly bucket: string; readonly key: string }
  | { readonly scheme: "file"; readonly path: string }
  | { readonly scheme: "pvc"; readonly claim: string; readonly path: string };

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

/**
 * Parses `spec.model.uri` into a location, or throws a FetchError that says what is wrong with it.
 * With `format` (MAAS_MODEL_FORMAT), also checks that a model of that format can come from there.
 */
export function parseModelUri(uri: string, format?: string): ModelLocation {
  const problem = modelUriProblem(uri) ?? (format === undefined ? undefined : modelSourceProblem(uri, format));
  if (problem !== undefined) throw new FetchError(`model URI ${redactUri(uri)}: ${problem}`);
  const where = `model URI ${redactUri(uri)}`;
  const scheme = uri.slice(0, uri.indexOf(":"));
  switch (scheme) {
    case "http":
    case "https": {
      let url: URL;
      try {
        url = new URL(uri);
      } catch {
        throw new FetchError(`${where} is not a valid URL`);
      }
      const name = checkPathSegments(decodeURIComponent(splitPath(url.pathname).name), where);
      return { scheme, url, name };
    }
    case "s3": {
      const rest = uri.slice("s3://".length);
      const slash = rest.indexOf("/");
      const key = rest.slice(slash + 1);
      checkPathSegments(key, where);
      return { scheme, bucket: rest.slice(0, slash), key };
    }
    case "file": {
      // Decoded by hand, not by URL: WHATWG URL rewrites file paths (drive letters, dot segments).
      const path = decodeURIComponent(uri.slice("file://".length).replace(/\/$/, ""));
      checkPathSegments(path.slice(1), where);
      return { scheme, path };
    }
    case "pvc": {
      const rest = uri.slice("pvc://".length).replace(/\/$/, "");
      const slash = rest.indexOf("/");
      const claim = slash < 0 ? rest : rest.slice(0, slash);
      const path = slash < 0 ? "" : checkPathSegments(decodeURIComponent(rest.slice(slash + 1)), where);
      return { scheme, claim, path };
    }
    default:
      // Unreachable: the grammar admits no other scheme.
      throw new FetchError(`${where}: scheme "${scheme}:" is not supported`);
  }
}

/**
 * Checks a relative path taken from a URI or a model.json (weight shard paths): forward slashes, no
 * empty, "." or ".." segments, no leading slash, no backslash or control characters, and not a URL
 * (a weight path is resolved against the model's URL). Returns it unchanged.
 */
export function checkRelativePath(path: string, where: string): string {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(path)) throw new FetchError(`${where}: path "${path}" must not be a URL`);
  return checkPathSegments(path, where);
}

/**
 * Checks a relative file path or name that stays a path (a file in the staging directory, a path in
 * a volume): like checkRelativePath, but "v1:model.json" is an ordinary name here. Returns it unchanged.
 */
export function checkPathSegments(path: string, where: string): string {
  if (path === "") throw new FetchError(`${where}: empty path`);
  if (path.startsWith("/")) throw new FetchError(`${where}: path "${path}" must be relative`);
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(path))
    throw new FetchError(`${where}: path "${escape(path)}" has a forbidden character`);
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

function escape(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}
