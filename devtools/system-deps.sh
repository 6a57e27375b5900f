#!/usr/bin/env bash
# Install the Debian packages the local control plane and the test harness need, if missing:
# PostgreSQL (postgresql), openssl, Node.js and npm (the test OpenID Provider). etcd-server only on the Debian 1.20 route;
# build-k8s.sh builds etcd and Kubernetes with the machine's Go otherwise.
set -euo pipefail

source "$(dirname "$0")/versions.env"
missing=()
# etcd is built from Go modules (build-k8s.sh) unless the Debian 1.20 route is chosen.
if [ "${ONYXIA_K8S_SOURCE:-$K8S_SOURCE}" = debian ]; then
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
fi
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps] installing ${missing[*]}" >&2
$SUDO apt-get update -qq
# Package scripts must not start system services (etcd, postgresql) on this machine.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
