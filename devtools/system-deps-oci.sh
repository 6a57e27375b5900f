#!/usr/bin/env bash
# Install what the OCI registry test fixture (devtools/ociregistry.py) needs, if missing:
# Debian's docker-registry (CNCF distribution 2.8) and htpasswd (apache2-utils) for its basic auth.
set -euo pipefail

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps-oci] installing ${missing[*]}" >&2
$SUDO apt-get update -qq
# The package's maintainer scripts would start a registry on :5000; a policy-rc.d that denies
# every action (exit 101) plus RUNLEVEL=1 keeps invoke-rc.d from starting anything.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
