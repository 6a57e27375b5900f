#!/bin/sh
# Init of the onyxia-py images: the IDE charts run `/opt/onyxia-init.sh <ide> <args...>` as
# uid 1000. Prepare the user's environment, then become the command (exec, so it gets the
# signals). It sources nothing from the environment or the volume.
set -e
export HOME="${HOME:-/home/onyxia}"
export USER="${USER:-$(id -un 2>/dev/null || echo onyxia)}"
work="${ROOT_PROJECT_DIRECTORY:-$HOME/work}"
# A fresh volume (or an emptyDir) may hide the image's directory; an error here is not fatal.
mkdir -p "$work" 2>/dev/null || true
cd "$work" 2>/dev/null || cd "$HOME" 2>/dev/null || true
[ "$#" -gt 0 ] || set -- /bin/bash
exec "$@"
