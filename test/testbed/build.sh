#!/usr/bin/env bash
# Builds the test bed's binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, helm) from the Go module proxy into a version-keyed cache directory, skipping what
# is already built. Prints the bin directory on the last line of stdout.
#
# Why wrapper modules: k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging paths; replace directives of a dependency are ignored, so the wrapper module replaces
# each staging module with its published tag. etcd's server module has the same problem.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${MAAS_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/maas-testbed}
bin="$cache_root/bin"
src="$cache_root/src"
mkdir -p "$bin" "$src"
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
go_os_arch=$(go env GOOS)-$(go env GOARCH)

log() { printf '[testbed-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# progress <label>: reads `go build -v` output and prints a line every 100 compiled packages.
progress() {
  local label=$1 n=0 start=$SECONDS
  while IFS= read -r line; do
    case "$line" in
      *.go:[0-9]*|*"go: "*|*"# "*) printf '%s\n' "$line" >&2 ;;
      *) n=$((n + 1)); if (( n % 100 == 0 )); then log "$label: $n packages compiled ($((SECONDS - start))s)"; fi ;;
    esac
  done
  log "$label: $n packages compiled in $((SECONDS - start))s"
}

# built <name> <version>: true when the binary for that version is already in the cache.
built() { [[ -x "$bin/$1-$2-$go_os_arch" ]]; }

link_current() { ln -sfn "$1-$2-$go_os_arch" "$bin/$1"; }

wrapper() { # wrapper <dir>: a fresh throwaway module
  rm -rf "$1" && mkdir -p "$1" && (cd "$1" && go mod init maas-testbed-wrapper >/dev/null 2>&1)
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION minor=${KUBERNETES_VERSION#v}
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl) missing=()
  for c in "${cmds[@]}"; do built "$c" "$v" || missing+=("$c"); done
  if (( ${#missing[@]} == 0 )); then for c in "${cmds[@]}"; do link_current "$c" "$v"; done; return; fi
  log "kubernetes $v: building ${missing[*]} (a cold build takes a long while on 2 cores)"
  local w="$src/kubernetes-$v"
  wrapper "$w"; cd "$w"
  local gomod staging
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
  local staging_v="v0.${minor#1.}"
  for m in $staging; do go mod edit -replace="$m=$m@$staging_v"; done
  local pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  log "kubernetes $v: resolving modules"
  go get "${pkgs[@]/%/@$v}" >&2
  local major=${minor%%.*} rest=${minor#*.}; local mnr=${rest%%.*}
  local ld="-s -w" date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=$major -X $p.gitMinor=$mnr -X $p.gitCommit=0000000000000000000000000000000000000000"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  mkdir -p out
  go build -v -trimpath -tags selinux,notest -ldflags "$ld" -o out/ "${pkgs[@]}" 2>&1 | progress "kubernetes $v"
  for c in "${missing[@]}"; do mv "out/$c" "$bin/$c-$v-$go_os_arch"; done
  for c in "${cmds[@]}"; do link_current "$c" "$v"; done
}

# build_go <name> <module@version> <package> [cache tag] [ldflags-function]: a main package built through
# a wrapper module. The ldflags function runs inside the wrapper (after `go get`) and prints extra -X flags.
build_go() {
  local name=$1 modv=$2 pkg=$3 v=${4:-${2#*@}} ldflags_fn=${5:-}
  if built "$name" "$v"; then link_current "$name" "$v"; return; fi
  log "$name $v: building"
  local w="$src/$name-$v"
  wrapper "$w"; cd "$w"
  go get "$modv" >&2
  local extra=""
  [[ -n $ldflags_fn ]] && extra=$($ldflags_fn)
  go build -v -trimpath -ldflags "-s -w $extra" -o "out/$name" "$pkg" 2>&1 | progress "$name $v"
  mv "out/$name" "$bin/$name-$v-$go_os_arch"
  link_current "$name" "$v"
}

# build_ours <name> <module@version>: one of our own small Go programs (test/testbed/go/<name>/main.go)
# built against a module from the proxy, in a wrapper module like the others. The cache key is the
# module's version plus a hash of main.go, so editing the program rebuilds it.
build_ours() {
  local name=$1 modv=$2 main="$here/go/$1/main.go" sum
  sum=$(sha256sum "$main" | cut -c1-12)
  local v="${modv#*@}-$sum"
  if built "$name" "$v"; then link_current "$name" "$v"; return; fi
  log "$name $v: building"
  local w="$src/$name-$v"
  wrapper "$w"; cd "$w"
  cp "$main" main.go
  go get "$modv" >&2
  go build -v -trimpath -ldflags "-s -w" -o "out/$name" . 2>&1 | progress "$name $v"
  mv "out/$name" "$bin/$name-$v-$go_os_arch"
  link_current "$name" "$v"
}

# What helm's own Makefile stamps: its version, and the Kubernetes version of its client-go, which
# `helm template` and `helm lint` assume when no cluster is asked (otherwise they assume v1.20).
helm_ldflags() {
  local cg major minor
  cg=$(go list -m -f '{{.Version}}' k8s.io/client-go)   # v0.MINOR.PATCH
  minor=$(echo "$cg" | cut -d. -f2)
  major=1
  local p=helm.sh/helm/v3
  echo "-X $p/internal/version.version=$HELM_VERSION -X $p/internal/version.gitTreeState=clean" \
    "-X $p/pkg/chartutil.k8sVersionMajor=$major -X $p/pkg/chartutil.k8sVersionMinor=$minor" \
    "-X $p/pkg/lint/rules.k8sVersionMajor=$major -X $p/pkg/lint/rules.k8sVersionMinor=$minor"
}

# KEDA, the autoscaler users run today, for the side-by-side benchmark and its test: the operator and
# the metrics API server, and its CRDs from the module. Its go.mod has replace directives, which a
# dependency's go.mod cannot carry: the wrapper repeats them.
build_keda() {
  local v=$KEDA_VERSION crds="$cache_root/keda-$KEDA_VERSION/crds"
  if built keda-operator "$v" && built keda-adapter "$v" && [[ -d $crds ]]; then
    link_current keda-operator "$v"; link_current keda-adapter "$v"; return
  fi
  log "keda $v: building keda-operator and keda-adapter (several minutes on 2 cores)"
  local w="$src/keda-$v" m=github.com/kedacore/keda/v2
  wrapper "$w"; cd "$w"
  local gomod
  gomod=$(go mod download -json "$m@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # "old vX => new vY", on a replace line or inside a replace block.
  sed -n 's#^[[:space:]]*\(replace[[:space:]]\)\{0,1\}[[:space:]]*\([^[:space:]]*\) \(v[^[:space:]]*\) => \([^[:space:]]*\) \(v[^[:space:]]*\).*#\2@\3=\4@\5#p' "$gomod" |
    while read -r r; do go mod edit -replace="$r"; done
  go get "$m/cmd/operator@$v" "$m/cmd/adapter@$v" >&2
  mkdir -p out
  go build -v -trimpath -ldflags "-s -w -X $m/version.Version=$v" -o out/ "$m/cmd/operator" "$m/cmd/adapter" 2>&1 |
    progress "keda $v"
  mv out/operator "$bin/keda-operator-$v-$go_os_arch"
  mv out/adapter "$bin/keda-adapter-$v-$go_os_arch"
  mkdir -p "$crds"
  cp "$(go list -m -f '{{.Dir}}' "$m")"/config/crd/bases/*.yaml "$crds/"
  chmod -R u+w "$crds"
  link_current keda-operator "$v"; link_current keda-adapter "$v"
}

only=${1:-all}
start=$SECONDS
if [[ $only == all || $only == etcd ]]; then
  build_go etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" go.etcd.io/etcd/server/v3
fi
[[ $only == all || $only == kubernetes ]] && build_kubernetes
[[ $only == all || $only == kwok ]] && build_go kwok "sigs.k8s.io/kwok@$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
[[ $only == all || $only == helm ]] && build_go helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "$HELM_VERSION-$HELM_BUILD" helm_ldflags
[[ $only == all || $only == keda ]] && build_keda
# Our GitOps checkers: Argo CD's Lua VM and Flux's kstatus (not part of "all": only their suite needs them).
[[ $only == argocd-lua-health ]] && build_ours argocd-lua-health "github.com/yuin/gopher-lua@$GOPHER_LUA_VERSION"
[[ $only == kstatus ]] && build_ours kstatus "sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION"
log "done in $((SECONDS - start))s; binaries in $bin"
echo "$bin"
