#!/usr/bin/env bash
# Install what the browser tests (tests/browser, Playwright) need, if missing: Debian's Chromium
# and a font family for readable screenshots. Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own (`playwright install` is not used anywhere).
set -euo pipefail
# shellcheck source=apt.sh
source "$(dirname "$0")/apt.sh"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)

apt_install system-deps-browser "${missing[@]}"
