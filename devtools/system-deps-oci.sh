#!/usr/bin/env bash
# Install what the OCI registry test fixture (devtools/ociregistry.py) needs, if missing:
# Debian's docker-registry (CNCF distribution 2.8) and htpasswd (apache2-utils) for its basic auth.
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)

apt_install system-deps-oci "${missing[@]}"
