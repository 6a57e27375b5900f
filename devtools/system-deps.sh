#!/usr/bin/env bash
# Install the Debian packages the local control plane and the test harness need, if missing:
# etcd (etcd-server), PostgreSQL (postgresql), openssl, Node.js and npm (the test OpenID Provider). Building Kubernetes needs more; see
# build-k8s.sh, which installs its own build tools only when it has to build.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
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
