#!/usr/bin/env bash
# Install what the browser tests (tests/browser, Playwright) need, if missing: Debian's Chromium
# and a font family for readable screenshots. Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own (`playwright install` is not used anywhere).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps-browser] installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
