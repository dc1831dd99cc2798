#!/usr/bin/env bash
# Installs everything maas needs on a fresh machine of this kind: Debian's prometheus, openssl and g++,
# the npm packages (including the pinned Node 24 runtime), the Python packages the tests use, and
# the test bed's Kubernetes binaries (built once from the Go module proxy, then cached by version), and
# the operator and CPU serving images (buildah/podman, cached by a key of what goes into them).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
step() { printf '\n[setup %4ds] %s\n' "$((SECONDS - start))" "$*"; }

step "Debian packages (prometheus, openssl, g++ for tfjs-node's binding)"
if ! command -v prometheus >/dev/null || ! command -v openssl >/dev/null || ! command -v g++ >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus openssl g++ >/dev/null
fi

step "npm ci (Node $(node --version) installs the pinned Node 24 runtime as a devDependency)"
npm ci --no-audit --no-fund

step "Python packages for tests (Triton's HTTP client, moto's S3 server, TensorFlow's CPU wheel)"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r test/requirements.txt

step "test bed binaries (cached by version in ${MAAS_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/maas-testbed})"
bash test/testbed/build.sh >/dev/null

step "images (npm run images: storage in ${MAAS_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/maas-images}; an unchanged tree builds nothing)"
npm run --silent images
step "ready"
