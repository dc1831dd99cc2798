/**
 * Grammars that the operator's CRD and the serving image enforce alike: the model URI (read by
 * `fetch`), the model version and the served name (read by `serve`). The CRD turns each rule into a
 * CEL rule or an OpenAPI pattern, which the API server evaluates with RE2; the image tests the same
 * text with JavaScript's RegExp. A spec the API server admits is therefore one the pod can run, and
 * the other way round.
 *
 * Every pattern is written in the part of the two regex dialects that reads the same in both: ASCII
 * character classes only (never `\s`, `\d`, `\w` or `.`: RE2's `\s` is ASCII whitespace, ECMAScript's
 * is Unicode whitespace, and `.` excludes different line terminators), no lookaround, no
 * backreferences, no flags. Anchored patterns decide the same language in both engines whatever
 * order their alternatives are tried in.
 *
 * Import-free and pure, like contract.ts: both sides import it.
 */

/**
 * One rule over a string: when `when` matches (or always, without it), `require` must match and
 * `forbid` must not. `message` says what to write instead.
 */
export interface PatternRule {
  readonly when?: string;
  readonly require?: string;
  readonly forbid?: string;
  readonly message: string;
}

const compiled = new Map<string, RegExp>();

function re(source: string): RegExp {
  let r = compiled.get(source);
  if (r === undefined) {
    r = new RegExp(source);
    compiled.set(source, r);
  }
  return r;
}

/** Whether `value` matches `pattern` (unanchored, as CEL's `matches` and OpenAPI's `pattern`). */
export function matches(value: string, pattern: string): boolean {
  return re(pattern).test(value);
}

/** Whether `value` satisfies `rule`. */
export function satisfies(rule: PatternRule, value: string): boolean {
  if (rule.when !== undefined && !matches(value, rule.when)) return true;
  if (rule.require !== undefined && !matches(value, rule.require)) return false;
  return rule.forbid === undefined || !matches(value, rule.forbid);
}

/** The message of the first rule `value` breaks, or undefined. */
export function firstViolation(rules: readonly PatternRule[], value: string): string | undefined {
  return rules.find((r) => !satisfies(r, value))?.message;
}

// ---------------------------------------------------------------------------------------------
// Model URIs
// ---------------------------------------------------------------------------------------------

/** Longest model URI, in characters (the URI is ASCII, so also in bytes). */
export const MODEL_URI_MAX_LENGTH = 2048;

const HEX = "[0-9A-Fa-f]";
/** A percent-encoded UTF-8 continuation byte (%80-%BF). */
const CONT = `%[89ABab]${HEX}`;
/**
 * One percent-encoded character in well-formed UTF-8 (RFC 3629): exactly what decodeURIComponent
 * decodes without throwing (no overlong forms, no surrogates, nothing above U+10FFFF).
 */
const UTF8_CHAR = [
  `%[0-7]${HEX}`,
  `%[Cc][2-9A-Fa-f]${CONT}`,
  `%[Dd]${HEX}${CONT}`,
  `%[Ee]0%[ABab]${HEX}${CONT}`,
  `%[Ee][1-9A-Ca-c]${CONT}${CONT}`,
  `%[Ee][Dd]%[89]${HEX}${CONT}`,
  `%[Ee][EFef]${CONT}${CONT}`,
  `%[Ff]0%[9ABab]${HEX}${CONT}${CONT}`,
  `%[Ff][1-3]${CONT}${CONT}${CONT}`,
  `%[Ff]4%8${HEX}${CONT}${CONT}`,
].join("|");

/** A "." in a path segment, literal or percent-encoded: both mean a dot segment to a URL resolver. */
const DOT = "([.]|%2[Ee])";
/**
 * A path character other than a dot: RFC 3986's pchar, where a percent-encoding may not stand for
 * "/", "\" or a control character (%2F, %5C, %00-%1F, %7F), which would split, escape or corrupt the
 * path once decoded.
 */
const NON_DOT = `([-A-Za-z0-9_~!$&'()*+,;=:@]|%(2[0-9A-Da-d]|[3-46][0-9A-Fa-f]|5[0-9ABD-Fabd-f]|7[0-9A-Ea-e]|[89A-Fa-f]${HEX}))`;
/** A path segment that is not empty, "." or ".." (a name of three or more dots is an ordinary name). */
const SEGMENT = `(${DOT}*${NON_DOT}(${NON_DOT}|${DOT})*|${DOT}{3,})`;
/** A character of a query or fragment (RFC 3986); its percent-encodings are checked by the UTF-8 rule. */
const QUERY_CHAR = `([-A-Za-z0-9._~!$&'()*+,;=:@/?]|%${HEX}{2})`;

/** A DNS label, and the last label of a host name, which starts with a letter so it never reads as a number. */
const DNS_LABEL = "[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const LAST_DNS_LABEL = "[A-Za-z]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const IPV4 = `${OCTET}([.]${OCTET}){3}`;
const H16 = `${HEX}{1,4}`;
const LS32 = `(${H16}:${H16}|${IPV4})`;
/** RFC 3986's IPv6address. */
const IPV6 = [
  `(${H16}:){6}${LS32}`,
  `::(${H16}:){5}${LS32}`,
  `(${H16})?::(${H16}:){4}${LS32}`,
  `((${H16}:)?${H16})?::(${H16}:){3}${LS32}`,
  `((${H16}:){0,2}${H16})?::(${H16}:){2}${LS32}`,
  `((${H16}:){0,3}${H16})?::${H16}:${LS32}`,
  `((${H16}:){0,4}${H16})?::${LS32}`,
  `((${H16}:){0,5}${H16})?::${H16}`,
  `((${H16}:){0,6}${H16})?::`,
].join("|");
/** A host as a URL parser reads it without rewriting it: a DNS name, a dotted-decimal IPv4 address or [IPv6]. */
const HOST = `((${DNS_LABEL}[.])*${LAST_DNS_LABEL}|${IPV4}|\\[(${IPV6})\\])`;
/** 1-65535, without leading zeros (port 0 cannot be connected to). */
const PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})";

/** The S3 bucket and PVC claim names fetch accepts: S3's bucket naming, and a DNS-1123 label. */
const S3_BUCKET = "[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]";
const PVC_CLAIM = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";

const HTTP_PREFIX = "^https?://";

const SEGMENT_WORDS = "no empty, '.' or '..' segments (also not as %2E), and no %2F, %5C or control characters";

/**
 * The model URI's grammar, rule by rule, in the order a user should fix them. The CRD has one CEL
 * rule per entry; fetch reports the first rule a URI breaks.
 */
export const MODEL_URI_RULES: readonly PatternRule[] = [
  {
    forbid: "^gs://",
    message:
      "gs:// is not supported: use s3://<bucket>/<key> with AWS_ENDPOINT_URL_S3=https://storage.googleapis.com " +
      "and HMAC keys in the credentials Secret",
  },
  {
    // gs:// is let through here so that it gets only the message above.
    require: "^(https?|s3|pvc|file|gs)://",
    message: "uri must start with https://, http://, s3://, pvc:// or file://",
  },
  {
    require: "^[!-\\[\\]-~]*$",
    message:
      "uri must be printable ASCII without spaces or backslashes: percent-encode anything else " +
      "(a space is %20, é is %C3%A9)",
  },
  {
    require: `^([^%]|${UTF8_CHAR})*$`,
    message: "every % in the uri must start a percent-encoded UTF-8 character, such as %20 or %C3%A9",
  },
  {
    forbid: "^https?://[^/?#]*@",
    message:
      "credentials do not belong in the uri (https://user:password@host/...), where anyone who can read the " +
      "Deployment sees them: put HTTP_AUTHORIZATION in the Secret named by credentialsSecretRef",
  },
  {
    // Without userinfo only: a URI with credentials gets the message above alone.
    when: "^https?://[^@/?#]*([/?#]|$)",
    require: `^https?://${HOST}(:${PORT})?([/?#]|$)`,
    message:
      "http(s) URIs need a host: a DNS name whose last label starts with a letter, a dotted IPv4 address or an " +
      "[IPv6] address, optionally with a :port from 1 to 65535",
  },
  {
    when: HTTP_PREFIX,
    require: `^https?://[^/?#]*(/${SEGMENT})+([?]${QUERY_CHAR}*)?(#${QUERY_CHAR}*)?$`,
    message: `http(s) URIs name a file: https://<host>/<path>/model.json[?<query>], with ${SEGMENT_WORDS}`,
  },
  {
    when: "^s3://",
    require: `^s3://${S3_BUCKET}(/${SEGMENT})+$`,
    message:
      "s3 URIs are s3://<bucket>/<key>: a bucket of 3-63 lowercase letters, digits, '.' and '-', and a key " +
      `naming an object (not a prefix ending in /), with no query and ${SEGMENT_WORDS}`,
  },
  {
    when: "^pvc://",
    require: `^pvc://${PVC_CLAIM}(/${SEGMENT})*/?$`,
    message:
      "pvc URIs are pvc://<claim-name>/<path inside the volume>: the claim is a PersistentVolumeClaim in the same " +
      `namespace named by a DNS-1123 label; the path stays inside the volume: no query, ${SEGMENT_WORDS}`,
  },
  {
    when: "^file://",
    require: `^file://(/${SEGMENT})+/?$`,
    message:
      "file URIs are file:///<absolute path> (development only: the path is on the node that runs the pod), " +
      `with no host, no query, ${SEGMENT_WORDS}`,
  },
];

/** URIs fetch can copy a whole directory from (a SavedModel is a directory). */
export const DIRECTORY_URI = "^(pvc|file)://";
/** URIs of remote stores, which name single objects: a TF.js model there is its model.json. */
export const REMOTE_URI = "^(https?|s3)://";
/** A URI whose path (before any query or fragment) ends in .json, in any case, as fetch decides it. */
export const JSON_FILE_URI = "^[a-z0-9]+://[^?#]*[.][Jj][Ss][Oo][Nn]([?#]|$)";

/** Model formats that are directories rather than a model.json. */
export const DIRECTORY_FORMATS: readonly string[] = ["tf-saved-model"];

export const SAVED_MODEL_SOURCE_MESSAGE =
  "format tf-saved-model is a directory (saved_model.pb and variables/): use a pvc:// or file:// uri; " +
  "http(s) and s3 uris name single files";
export const MODEL_JSON_SOURCE_MESSAGE =
  "http(s) and s3 uris of tfjs-graph and tfjs-layers models must name the model.json file; its weight " +
  "files are fetched from beside it";

/** What is wrong with fetching a model of `format` from `uri` (which already follows MODEL_URI_RULES), if anything. */
export function modelSourceProblem(uri: string, format: string): string | undefined {
  const directory = DIRECTORY_FORMATS.includes(format);
  if (directory && !matches(uri, DIRECTORY_URI)) return SAVED_MODEL_SOURCE_MESSAGE;
  if (!directory && matches(uri, REMOTE_URI) && !matches(uri, JSON_FILE_URI)) return MODEL_JSON_SOURCE_MESSAGE;
  return undefined;
}

/** The first problem with a model URI (grammar, then length), or undefined when fetch can use it. */
export function modelUriProblem(uri: string): string | undefined {
  const broken = firstViolation(MODEL_URI_RULES, uri);
  if (broken !== undefined) return broken;
  if (uri.length === 0) return "uri must not be empty";
  if (uri.length > MODEL_URI_MAX_LENGTH) return `uri must be at most ${MODEL_URI_MAX_LENGTH} characters`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Versions and served names
// ---------------------------------------------------------------------------------------------

/**
 * A model version: digits, as TF Serving numbers versions and as clients ask for them
 * (/v1/models/<name>/versions/<digits>, /v2/models/<name>/versions/<digits>). At most 15 digits, so
 * the number is exact in a JavaScript number (and in TF Serving's int64).
 */
export const MODEL_VERSION_PATTERN = "^[0-9]{1,15}$";
export const MODEL_VERSION_MAX_LENGTH = 15;
export const MODEL_VERSION_MESSAGE =
  'version must be a number of at most 15 digits, e.g. "3": TF Serving and KServe clients ask for ' +
  "/v1/models/<name>/versions/3";

/**
 * The name clients use in /v1/models/<name> and /v2/models/<name>: letters, digits, '-', '_' and '.',
 * starting and ending with a letter or digit, so it is one URL path segment that needs no encoding.
 */
export const SERVED_NAME_PATTERN = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
export const SERVED_NAME_MAX_LENGTH = 63;
export const SERVED_NAME_MESSAGE =
  "servedName must be at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";

/** Whether `name` is a served name (pattern and length), as both the CRD and `serve` check it. */
export function isServedName(name: string): boolean {
  return name.length <= SERVED_NAME_MAX_LENGTH && matches(name, SERVED_NAME_PATTERN);
}

/** Whether `version` is a model version, as both the CRD and `serve` check it. */
export function isModelVersion(version: string): boolean {
  return matches(version, MODEL_VERSION_PATTERN);
}
