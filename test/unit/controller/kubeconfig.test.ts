import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  accessFromKubeconfig,
  defaultAccess,
  inClusterAccess,
  loadKubeconfig,
} from "../../../operator/src/controller/kubeconfig.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

function config(user: Record<string, unknown>, cluster: Record<string, unknown> = {}) {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "ctx",
    contexts: [
      { name: "other", context: { cluster: "nowhere", user: "nobody" } },
      { name: "ctx", context: { cluster: "c", user: "u" } },
    ],
    clusters: [{ name: "c", cluster: { server: "https://10.0.0.1:6443/", ...cluster } }],
    users: [{ name: "u", user }],
  };
}

describe("kubeconfig loading (the operator's own, without client-node)", () => {
  const dir = mkdtempSync(join(tmpdir(), "maas-kubeconfig-"));
  writeFileSync(join(dir, "ca.crt"), "CA PEM");
  writeFileSync(join(dir, "user.crt"), "CERT PEM");
  writeFileSync(join(dir, "user.key"), "KEY PEM");

  it("reads the current context's server, CA and client certificate, resolving relative paths against the file's directory", () => {
    const a = accessFromKubeconfig(
      config(
        { "client-certificate": "user.crt", "client-key": join(dir, "user.key") },
        { "certificate-authority": "ca.crt" },
      ),
      dir,
      "kc",
    );
    assert.equal(a.server, "https://10.0.0.1:6443");
    assert.equal(a.ca?.toString(), "CA PEM");
    assert.equal(a.cert?.toString(), "CERT PEM");
    assert.equal(a.key?.toString(), "KEY PEM");
    assert.equal(a.insecureSkipTlsVerify, false);
    assert.match(a.source, /kubeconfig kc \(context ctx\)/);
  });

  it("reads inline base64 data, tokens, token files and insecure-skip-tls-verify", () => {
    const a = accessFromKubeconfig(
      config(
        { "client-certificate-data": b64("C"), "client-key-data": b64("K"), token: "abc", tokenFile: "tok" },
        { "certificate-authority-data": b64("CA"), "insecure-skip-tls-verify": true, "tls-server-name": "api" },
      ),
      dir,
      "kc",
    );
    assert.equal(a.ca?.toString(), "CA");
    assert.equal(a.cert?.toString(), "C");
    assert.equal(a.key?.toString(), "K");
    assert.equal(a.token, "abc");
    assert.equal(a.tokenFile, join(dir, "tok"));
    assert.equal(a.insecureSkipTlsVerify, true);
    assert.equal(a.tlsServerName, "api");
  });

  it("uses a context other than the current one when asked", () => {
    assert.throws(
      () => accessFromKubeconfig(config({}), dir, "kc", "other"),
      /cluster "nowhere" of context other not found/,
    );
  });

  it("names what is missing or unsupported", () => {
    assert.throws(() => accessFromKubeconfig({}, dir, "kc"), /kubeconfig kc: no current-context/);
    assert.throws(
      () => accessFromKubeconfig({ ...config({}), "current-context": "gone" }, dir, "kc"),
      /context "gone" not found/,
    );
    assert.throws(
      () => accessFromKubeconfig(config({ exec: { command: "aws" } }), dir, "kc"),
      /user u uses exec, which maas-operator does not support/,
    );
    assert.throws(() => accessFromKubeconfig(config({ "client-certificate": "user.crt" }), dir, "kc"), /without a key/);
    assert.throws(
      () => accessFromKubeconfig(config({ "client-certificate": "missing.crt", "client-key": "user.key" }), dir, "kc"),
      /reading the client certificate .*missing\.crt/,
    );
    const noServer = config({});
    noServer.clusters[0]!.cluster = {} as never;
    assert.throws(() => accessFromKubeconfig(noServer, dir, "kc"), /cluster c has no server/);
  });

  it("reads a YAML file and reports a malformed one with its path", () => {
    const good = join(dir, "good.yaml");
    writeFileSync(
      good,
      "apiVersion: v1\nkind: Config\ncurrent-context: ctx\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:8080'}\nusers:\n- name: u\n  user: {token: t}\n",
    );
    assert.equal(loadKubeconfig(good).server, "http://127.0.0.1:8080");
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "clusters: [\n");
    assert.throws(() => loadKubeconfig(bad), new RegExp(`kubeconfig ${bad}: `));
    assert.throws(() => loadKubeconfig(join(dir, "absent.yaml")), /absent\.yaml/);
    assert.equal(defaultAccess(good).server, "http://127.0.0.1:8080");
    assert.equal(
      defaultAccess(undefined, { KUBECONFIG: `${join(dir, "absent.yaml")}:${good}` }).server,
      "http://127.0.0.1:8080",
    );
  });

  it("builds the in-cluster connection from the service account files and the environment", () => {
    const sa = mkdtempSync(join(tmpdir(), "maas-sa-"));
    writeFileSync(join(sa, "token"), "tok\n");
    writeFileSync(join(sa, "ca.crt"), "SA CA");
    const a = inClusterAccess({ KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" }, sa);
    assert.equal(a.server, "https://10.96.0.1:443");
    assert.equal(a.ca?.toString(), "SA CA");
    assert.equal(a.tokenFile, join(sa, "token"));
    assert.equal(inClusterAccess({ KUBERNETES_SERVICE_HOST: "fd00::1" }, sa).server, "https://[fd00::1]:443");
    assert.throws(() => inClusterAccess({}, sa), /KUBERNETES_SERVICE_HOST is not set/);
    assert.throws(() => inClusterAccess({ KUBERNETES_SERVICE_HOST: "h" }, dir), /no service account token/);
  });
});
