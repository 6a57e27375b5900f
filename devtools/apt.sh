# Sourced by the system-deps-*.sh scripts: `apt_install TAG PACKAGE...` installs Debian packages
# without recommends, noninteractively, and without letting any package start a system service
# (a temporary /usr/sbin/policy-rc.d that exits 101, unless one already exists). `apt-get update`
# runs only when a package is not known yet. Waits up to 10 minutes for another apt's lock.

apt_install() {
  local tag=$1 sudo="" policy=/usr/sbin/policy-rc.d ours=0 p
  shift
  [ $# -gt 0 ] || return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local apt=($sudo apt-get -o DPkg::Lock::Timeout=600)
  for p in "$@"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then
      echo "[$tag] apt-get update (package $p unknown)" >&2
      "${apt[@]}" update -qq
      break
    fi
  done
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# onyxia-py devtools/apt.sh: no service starts during apt-get install\nexit 101\n' |
      $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    ours=1
  fi
  echo "[$tag] installing $*" >&2
  local rc=0
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${apt[@]}" install -y -qq --no-install-recommends \
    "$@" >/dev/null || rc=$?
  [ "$ours" -eq 0 ] || $sudo rm -f "$policy"
  return $rc
}
