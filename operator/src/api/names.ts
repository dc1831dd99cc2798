/** Names of the ModelDeployment API: group, version, kind, and the limits derived from them. */

export const GROUP = "maas.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}` as const;
export const KIND = "ModelDeployment";
export const LIST_KIND = "ModelDeploymentList";
export const PLURAL = "modeldeployments";
export const SINGULAR = "modeldeployment";
export const SHORT_NAMES = ["md"] as const;
export const CATEGORIES = ["maas"] as const;
export const CRD_NAME = `${PLURAL}.${GROUP}` as const;

/**
 * Longest ModelDeployment name whose children keep readable names. The Deployment and Service carry
 * the ModelDeployment's name (the Service name must be a DNS-1035 label), and the Deployment's pods
 * are named `<name>-<pod-template-hash, up to 10>-<5 random>`. The API server truncates a
 * generateName to 58 characters, so `<name>-<hash>-` must fit: 46 + 1 + 10 + 1 = 58, and the pod
 * name (and hostname) stays at most 63 characters.
 */
export const MAX_NAME_LENGTH = 46;

/** A DNS-1035 label: what a Service name must be. */
export const DNS1035_LABEL_PATTERN = "^[a-z]([-a-z0-9]*[a-z0-9])?$";

/** A DNS-1123 subdomain: what Secret, PersistentVolumeClaim and PriorityClass names must be. */
export const DNS1123_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/**
 * Node label with the GPU model (NVIDIA's GPU feature discovery sets it), which resources.gpu.product
 * selects on.
 */
export const GPU_PRODUCT_LABEL = "nvidia.com/gpu.product";

/** A DNS-1123 label: what a namespace name must be. */
export const DNS1123_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

const IMAGE_DOMAIN_COMPONENT = "[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?";
const IMAGE_PATH_COMPONENT = "[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*";
const IMAGE_TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
/**
 * A container image reference as the container runtime parses it (the distribution/reference
 * grammar): [registry[:port]/]path[:tag][@algorithm:hex]. IPv6 registry addresses are not supported.
 */
export const IMAGE_REFERENCE_PATTERN =
  `^(${IMAGE_DOMAIN_COMPONENT}([.]${IMAGE_DOMAIN_COMPONENT})*(:[0-9]+)?/)?` +
  `${IMAGE_PATH_COMPONENT}(/${IMAGE_PATH_COMPONENT})*(:${IMAGE_TAG})?` +
  "(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$";
/** The name (before any :tag and @digest) is at most 255 characters, which the pattern above cannot count. */
export const IMAGE_NAME_LENGTH_PATTERN = `^[^@]{1,255}(:${IMAGE_TAG})?(@|$)`;
