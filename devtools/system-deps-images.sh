#!/usr/bin/env bash
# Install what devtools/images.py needs to build and test local container images, if missing:
# mmdebstrap (the Debian root filesystems), zstd (layer compression), containerd + runc (ctr, to
# import and run an image in a containerd the caller starts by hand). The builder writes the OCI
# layout itself (no umoci). No service is started.
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

missing=()
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v ctr >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
# mmdebstrap's chroot needs these on the host to verify and unpack packages.
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)

apt_install system-deps-images "${missing[@]}"
