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
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string) => join(dir, f);
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
      "/CN=maas-testbed-ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    ],
    dir,
  );
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
  return {
    dir,
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    saKey: p("sa.key"),
    saPub: p("sa.pub"),
  };
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
