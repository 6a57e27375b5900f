#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager and kube-scheduler from Debian's `kubernetes`
# source package once, and cache them outside the repository.
#
# Cache: ${ONYXIA_CACHE_DIR:-$HOME/.cache/onyxia-py}/k8s-<version>/bin. A second run with a full
# cache does nothing. Needs root (or sudo) only for the Debian packages it installs.
set -euo pipefail

K8S_VERSION="${ONYXIA_K8S_VERSION:-1.20.2}"
CACHE="${ONYXIA_CACHE_DIR:-$HOME/.cache/onyxia-py}"
OUT="$CACHE/k8s-$K8S_VERSION/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

say() { printf '[build-k8s] %s\n' "$*" >&2; }

have_all() {
  local b
  for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done
}

if have_all; then
  say "cached: $OUT"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# A deb-src entry derived from the machine's own Debian sources (no host name is written here).
SRC_LIST=/etc/apt/sources.list.d/onyxia-py-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && [ ! -f "$SRC_LIST" ]; then
  say "adding a deb-src entry derived from /etc/apt/sources.list.d/debian.sources"
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$SRC_LIST" >/dev/null
  $SUDO apt-get update -qq
fi

missing=()
command -v go >/dev/null || missing+=(golang-go)
command -v rsync >/dev/null || missing+=(rsync)
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
command -v make >/dev/null || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

WORK="$CACHE/k8s-$K8S_VERSION/src"
mkdir -p "$WORK"
cd "$WORK"
tree=$(find . -maxdepth 1 -type d -name "kubernetes-$K8S_VERSION*" | head -n 1)
if [ -z "$tree" ]; then
  say "fetching Debian source package kubernetes ($K8S_VERSION)"
  apt-get source -qq "kubernetes=$K8S_VERSION*" >/dev/null 2>&1 || apt-get source -qq kubernetes >/dev/null
  tree=$(find . -maxdepth 1 -type d -name "kubernetes-*" | head -n 1)
fi
[ -n "$tree" ] || { say "source tree not found after apt-get source"; exit 1; }
SRC="$(cd "$tree" && pwd)"

# GOPATH mode, as the Debian packaging builds it.
mkdir -p "$SRC/.go/src/k8s.io" "$CACHE/k8s-$K8S_VERSION/home"
ln -sfn "$SRC" "$SRC/.go/src/k8s.io/kubernetes"
say "building ${BINARIES[*]} (several minutes on 2 cores; progress below)"
start=$(date +%s)
(
  cd "$SRC/.go/src/k8s.io/kubernetes"
  export GOPATH="$SRC/.go" CGO_ENABLED=0 HOME="$CACHE/k8s-$K8S_VERSION/home" GO111MODULE=off GOFLAGS=
  export GOCACHE="$CACHE/k8s-$K8S_VERSION/gocache"
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" 2>&1 |
    while IFS= read -r line; do printf '[build-k8s] %s (%ss)\n' "$line" "$(( $(date +%s) - start ))" >&2; done
)
mkdir -p "$OUT"
for b in "${BINARIES[@]}"; do
  found=$(find "$SRC/_output" -type f -name "$b" -perm -u+x | head -n 1)
  [ -n "$found" ] || { say "build produced no $b"; exit 1; }
  cp "$found" "$OUT/$b.tmp" && mv "$OUT/$b.tmp" "$OUT/$b"
done
say "built in $(( $(date +%s) - start ))s, cached in $OUT"
