#!/usr/bin/env bash
# Build the local cluster's binaries once and cache them outside the repository:
#   etcd                                            -> $CACHE/etcd-<ETCD_VERSION>/bin/etcd
#   kube-apiserver, kube-controller-manager,
#   kube-scheduler, kubelet, kube-proxy             -> $CACHE/k8s-<K8S_VERSION>/bin/
# from the Go module proxy (versions in devtools/versions.env). A full cache makes this a no-op.
#
# Route: k8s.io/kubernetes is not built as a dependency as it is (its go.mod replaces about thirty
# k8s.io/* staging modules with local folders, which a module zip leaves out), so a small build
# module of our own requires k8s.io/kubernetes vX.Y.Z and points each staging module at its
# published v0.Y.Z release. etcd's server module is required the same way. With
# ONYXIA_K8S_SOURCE=debian the control plane comes from Debian's 1.20.2 source package instead
# (build-k8s-debian.sh; a fallback, not tested by default).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
K8S_VERSION="${ONYXIA_K8S_VERSION:-$K8S_VERSION}"
K8S_SOURCE="${ONYXIA_K8S_SOURCE:-$K8S_SOURCE}"
ETCD_VERSION="${ONYXIA_ETCD_VERSION:-$ETCD_VERSION}"
CACHE="${ONYXIA_CACHE_DIR:-$HOME/.cache/onyxia-py}"

say() { printf '[build-k8s] %s\n' "$*" >&2; }

if [ "$K8S_SOURCE" = debian ]; then
  ONYXIA_K8S_VERSION="$K8S_VERSION" exec bash "$HERE/build-k8s-debian.sh"
fi
[ "$K8S_SOURCE" = modules ] || { say "unknown K8S_SOURCE '$K8S_SOURCE' (modules or debian)"; exit 2; }

command -v go >/dev/null || { say "Go is missing: these binaries are built with the machine's Go (1.26 or newer)"; exit 1; }

# Shared by both builds: the module download cache and the compile cache, keyed by Go itself.
export GOMODCACHE="${GOMODCACHE:-$(go env GOMODCACHE)}"
export GOCACHE="${GOCACHE:-$(go env GOCACHE)}" CGO_ENABLED=0 GOFLAGS=-mod=mod GO111MODULE=on

# Prints one line per 200 packages compiled, with the elapsed time: a build's progress.
progress() {
  local what=$1 start=$2
  awk -v what="$what" -v start="$start" '
    /^(go: |#|[a-z]+\.go:)/ { print "[build-k8s] " what ": " $0 > "/dev/stderr"; next }
    { n++; if (n % 200 == 0) { cmd = "date +%s"; cmd | getline now; close(cmd);
        printf "[build-k8s] %s: %d packages compiled (%ds)\n", what, n, now - start > "/dev/stderr" } }
    END { printf "[build-k8s] %s: %d packages compiled\n", what, n > "/dev/stderr" }'
}

# go build with its package list as progress; the output binary lands atomically.
build() {
  local what=$1 out=$2 pkg=$3 ldflags=$4 start
  start=$(date +%s)
  go build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg" 2>&1 | progress "$what" "$start"
  [ "${PIPESTATUS[0]}" -eq 0 ] || { say "$what: go build failed"; return 1; }
  mv "$out.tmp" "$out"
  say "$what built in $(( $(date +%s) - start ))s"
}

build_etcd() {
  local dir="$CACHE/etcd-$ETCD_VERSION" v="v$ETCD_VERSION"
  [ -x "$dir/bin/etcd" ] && { say "cached: $dir/bin/etcd"; return 0; }
  say "building etcd $ETCD_VERSION from Go modules"
  mkdir -p "$dir/build" "$dir/bin"
  cd "$dir/build"
  cat > go.mod <<EOF
module onyxia.local/etcdbuild

go 1.26.0

require (
	go.etcd.io/etcd/server/v3 $v
	go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 $v
)
EOF
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy
  build etcd "$dir/bin/etcd" go.etcd.io/etcd/server/v3 \
    "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=onyxia-$v"
}

K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

build_k8s() {
  local dir="$CACHE/k8s-$K8S_VERSION" v="v$K8S_VERSION" minor b missing=()
  for b in "${K8S_BINARIES[@]}"; do [ -x "$dir/bin/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && { say "cached: $dir/bin"; return 0; }
  say "building Kubernetes $K8S_VERSION from Go modules: ${missing[*]} (a cold build takes about 20 min on 2 cores)"
  mkdir -p "$dir/build" "$dir/bin"
  cd "$dir/build"
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  # The staging modules are the k8s.io/* paths that k8s.io/kubernetes replaces with a folder.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || { say "could not download k8s.io/kubernetes@$v"; return 1; }
  {
    printf 'module onyxia.local/k8sbuild\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$v"
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod" |
      grep -v '^k8s.io/sample-' | while read -r m; do printf '\t%s => %s v0.%s.%s\n' "$m" "$m" "$minor" "${K8S_VERSION##*.}"; done
    printf ')\n'
  } > go.mod
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for b in "${K8S_BINARIES[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    printf ')\n'
  } > tools.go
  go mod tidy
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$v"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$v"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for b in "${missing[@]}"; do
    build "$b" "$dir/bin/$b" "k8s.io/kubernetes/cmd/$b" "$ldflags"
  done
}

start=$(date +%s)
build_etcd
build_k8s
say "done in $(( $(date +%s) - start ))s"
