#!/usr/bin/env bash
# Install what devtools/images.py needs to build and test local container images, if missing:
# mmdebstrap (the Debian root filesystems), zstd (layer compression), containerd + runc (ctr, to
# import and run an image in a containerd the caller starts by hand). The builder writes the OCI
# layout itself (no umoci). No service is started.
set -euo pipefail

missing=()
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
command -v ctr >/dev/null 2>&1 || missing+=(containerd)
command -v runc >/dev/null 2>&1 || missing+=(runc)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
# mmdebstrap's chroot needs these on the host to verify and unpack packages.
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps-images] installing ${missing[*]}" >&2
install() {
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}
# containerd's maintainer scripts would start the daemon; a policy-rc.d that denies every
# action (exit 101) plus RUNLEVEL=1 keeps invoke-rc.d from starting anything.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" -eq 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
# apt-get update only when the package lists do not know a package yet.
install 2>/dev/null || { $SUDO apt-get update -qq && install; }
