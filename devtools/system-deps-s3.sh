#!/usr/bin/env bash
# Install what the S3 test server (devtools/localrgw.py) needs, if missing: Debian's Ceph
# (a monitor, a memstore OSD and the RADOS Gateway with S3, IAM and STS) and uuidgen.
# About 60 MB to download, 20 s to install; nothing is started or enabled.
set -euo pipefail

missing=()
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps-s3] installing ${missing[*]}" >&2
$SUDO apt-get update -qq
# The packages ship systemd units but start nothing without a configured cluster; RUNLEVEL=1
# keeps invoke-rc.d quiet on machines without systemd.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
