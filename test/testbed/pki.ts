/**
 * The test bed's PKI, made with Debian's openssl: a CA, the API server's serving certificate,
 * a service-account key pair, and client certificates for any identity (user + groups), each with
 * a kubeconfig file. Identities other than admin let tests run a component with exactly the RBAC
 * it declares.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  saKey: string;
  saPub: string;
  /**
   * The aggregation layer's front proxy: its own CA (what aggregated API servers trust for the user
   * the API server passes on) and the client certificate the API server presents to them.
   */
  frontProxyCaCert: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
  selfSignedCa(dir, "ca", "maas-testbed-ca");
  writeFileSync(
    p("server.ext"),
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=kube-apiserver",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
    ],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "3650",
      "-extfile",
      "server.ext",
      "-out",
      "server.crt",
    ],
    dir,
  );
  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  const frontProxyCa = selfSignedCa(dir, "front-proxy-ca", "maas-testbed-front-proxy-ca");
  issue(dir, frontProxyCa, "front-proxy-client", "/CN=front-proxy-client", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    saKey: p("sa.key"),
    saPub: p("sa.pub"),
    frontProxyCaCert: frontProxyCa.cert,
    frontProxyClientCert: p("front-proxy-client.crt"),
    frontProxyClientKey: p("front-proxy-client.key"),
  };
}

function selfSignedCa(dir: string, base: string, cn: string): { cert: string; key: string } {
  openssl(
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "3650",
      "-subj",
      `/CN=${cn}`,
      "-keyout",
      `${base}.key`,
      "-out",
      `${base}.crt`,
    ],
    dir,
  );
  return { cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}

/** Issues `<base>.crt` and `<base>.key` in `dir`, signed by `ca`, with the given subject and extensions. */
function issue(dir: string, ca: { cert: string; key: string }, base: string, subj: string, ext: string): void {
  writeFileSync(join(dir, `${base}.ext`), ext);
  openssl(
    ["req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", `${base}.key`, "-out", `${base}.csr`],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      ca.cert,
      "-CAkey",
      ca.key,
      "-CAcreateserial",
      "-days",
      "3650",
      "-extfile",
      `${base}.ext`,
      "-out",
      `${base}.crt`,
    ],
    dir,
  );
}

/**
 * A serving certificate from the test bed's CA for a server running beside the test bed (an
 * aggregated API server, a webhook): valid for `name` as a DNS name, `ips` and localhost. Returns its paths.
 */
export function issueServingCert(pki: Pki, name: string, ips: readonly string[]): { cert: string; key: string } {
  const base = `serving-${safeName(name)}`;
  // The name is a DNS name too: the aggregation layer checks a backend's certificate against
  // <service>.<namespace>.svc.
  const sans = [...ips.map((ip) => `IP:${ip}`), `DNS:${name}`, "DNS:localhost"].join(",");
  issue(
    pki.dir,
    { cert: pki.caCert, key: pki.caKey },
    base,
    `/CN=${name}`,
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  return { cert: join(pki.dir, `${base}.crt`), key: join(pki.dir, `${base}.key`) };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** Issues a client certificate for `user` in `groups` and writes a kubeconfig for it; returns its path. */
export function writeKubeconfig(pki: Pki, server: string, user: string, groups: readonly string[] = []): string {
  const base = join(pki.dir, `user-${safeName(user)}${groups.length ? "-" + safeName(groups.join("+")) : ""}`);
  const kubeconfig = `${base}.kubeconfig`;
  if (existsSync(kubeconfig)) return kubeconfig;
  const subj = `/CN=${user}` + groups.map((g) => `/O=${g}`).join("");
  writeFileSync(`${base}.ext`, "extendedKeyUsage=clientAuth\n");
  openssl(
    ["req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", `${base}.key`, "-out", `${base}.csr`],
    pki.dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      pki.caCert,
      "-CAkey",
      pki.caKey,
      "-CAcreateserial",
      "-days",
      "3650",
      "-extfile",
      `${base}.ext`,
      "-out",
      `${base}.crt`,
    ],
    pki.dir,
  );
  const yaml = [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: maas-testbed",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority: ${pki.caCert}`,
    "users:",
    `- name: ${JSON.stringify(user)}`,
    "  user:",
    `    client-certificate: ${base}.crt`,
    `    client-key: ${base}.key`,
    "contexts:",
    "- name: maas-testbed",
    "  context:",
    "    cluster: maas-testbed",
    `    user: ${JSON.stringify(user)}`,
    "current-context: maas-testbed",
    "",
  ].join("\n");
  writeFileSync(kubeconfig, yaml, { mode: 0o600 });
  return kubeconfig;
}
