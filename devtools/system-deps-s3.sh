#!/usr/bin/env bash
# Install what the S3 test server (devtools/localrgw.py) needs, if missing: Debian's Ceph
# (a monitor, a memstore OSD and the RADOS Gateway with S3, IAM and STS) and uuidgen.
# About 60 MB to download, 20 s to install; nothing is started or enabled.
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

missing=()
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
command -v radosgw >/dev/null 2>&1 || missing+=(radosgw)
command -v uuidgen >/dev/null 2>&1 || missing+=(uuid-runtime)

apt_install system-deps-s3 "${missing[@]}"
