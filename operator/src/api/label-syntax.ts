/**
 * Label keys and label values as the API server checks them in a Pod (IsQualifiedName and
 * IsValidLabelValue in k8s.io/apimachinery/pkg/util/validation), and schema nodes built from them.
 * Every value the CRD passes into a nodeSelector, a toleration, an affinity term or a label selector
 * of the Deployment uses these, so a bad one is refused when the ModelDeployment is applied, naming
 * its field, instead of when the operator applies the Deployment.
 *
 * The patterns use only what RE2 (API server) and ECMAScript (runtime validator) read alike.
 */
import { DNS1123_SUBDOMAIN_PATTERN } from "./names.ts";
import { celString, map, rule, string, type Schema } from "./schema.ts";

/** A label name: at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit. */
const NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
/** A label key: an optional DNS-subdomain prefix and "/", then a name. */
export const LABEL_KEY_PATTERN = `^(${DNS1123_SUBDOMAIN_PATTERN.slice(1, -1)}/)?${NAME}$`;
/**
 * The prefix is at most 253 characters, which LABEL_KEY_PATTERN cannot count (its labels repeat):
 * a second pattern that only counts.
 */
export const LABEL_KEY_PREFIX_PATTERN = "^([^/]{1,253}/)?[^/]*$";
export const LABEL_KEY_MAX_LENGTH = 253 + 1 + 63;
export const LABEL_VALUE_PATTERN = `^(${NAME})?$`;
/** A label value that may not be empty (a GPU product to select on). */
export const NON_EMPTY_LABEL_VALUE_PATTERN = `^${NAME}$`;
export const LABEL_VALUE_MAX_LENGTH = 63;

export const LABEL_KEY_WORDS =
  "a label key, [prefix/]name: name up to 63 of A-Z a-z 0-9 - _ . beginning and ending alphanumeric, " +
  "prefix a DNS subdomain up to 253 characters";

export function isLabelKey(key: string): boolean {
  return new RegExp(LABEL_KEY_PATTERN).test(key) && new RegExp(LABEL_KEY_PREFIX_PATTERN).test(key);
}

export function isLabelValue(value: string): boolean {
  return value.length <= LABEL_VALUE_MAX_LENGTH && new RegExp(LABEL_VALUE_PATTERN).test(value);
}

/** CEL that is true when `expr` (a string) is a label key. */
function celIsLabelKey(expr: string): string {
  return `${expr}.matches(${celString(LABEL_KEY_PATTERN)}) && ${expr}.matches(${celString(LABEL_KEY_PREFIX_PATTERN)})`;
}

/** A string that must be a label key (`emptyOk`: or empty, as a toleration's key); `what` starts the message. */
export function labelKey(description: string, what: string, opts: { emptyOk?: boolean } = {}): Schema<string> {
  const emptyOk = opts.emptyOk === true;
  return string(description, {
    maxLength: LABEL_KEY_MAX_LENGTH,
    rules: [
      rule<string>({
        rule: emptyOk ? `self == '' || (${celIsLabelKey("self")})` : celIsLabelKey("self"),
        message: `${what} must be ${emptyOk ? "empty or " : ""}${LABEL_KEY_WORDS}`,
        check: (k) => (emptyOk && k === "") || isLabelKey(k),
      }),
    ],
  });
}

/**
 * A string that must be a label value (possibly empty). An OpenAPI pattern rather than a CEL rule:
 * inside a map, the API server names a pattern's field `map.key` but a CEL rule's `map[key]`, and
 * the runtime validator uses the first notation throughout.
 */
export function labelValue(description: string): Schema<string> {
  return string(description, { maxLength: LABEL_VALUE_MAX_LENGTH, pattern: LABEL_VALUE_PATTERN });
}

/** A map of label keys to label values (a nodeSelector, matchLabels); `what` starts the message about keys. */
export function labelMap(description: string, what: string, maxProperties: number): Schema<Record<string, string>> {
  return map(description, labelValue("Label value."), {
    maxProperties,
    rules: [
      rule<Record<string, string>>({
        rule: `self.all(k, ${celIsLabelKey("k")})`,
        message: `${what} keys must be ${LABEL_KEY_WORDS}`,
        check: (m) => Object.keys(m).every(isLabelKey),
      }),
    ],
  });
}
