"""Root filesystems: the Debian base (mmdebstrap) and shell steps run in a chroot over it.

A derived layer is the upper directory of an overlay mount whose lower directories are its
parents' trees, so the upper directory IS the layer's diff. Every step runs in a private mount
namespace (`unshare --mount`): the overlay, /proc, the tmpfs /tmp and the bind mounts vanish
with the step's process, so nothing stays mounted when a build fails or is interrupted.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BUILD_DIR", "CACHE_DIR", "BuildError", "Chroot", "mmdebstrap"]

BUILD_DIR = "/tmp/onyxia-build"  # the build directory inside the chroot (config, step scripts)
CACHE_DIR = "/tmp/onyxia-cache"  # the download caches inside the chroot (pip, npm)
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/lintian/*",
)

# Runs as root in a fresh mount namespace; $1.. are the paths below, then the env for chroot.
_OUTER = r"""
root=$1 upper=$2 work=$3 lower=$4 build=$5 cache=$6; shift 6
if [ -n "$lower" ]; then
  mount -t overlay overlay \
    -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off" \
    "$root"
else
  mount --bind "$upper" "$root"
fi
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
mkdir "$root/tmp/onyxia-build" "$root/tmp/onyxia-cache"
mount --bind "$build" "$root/tmp/onyxia-build"
mount --bind "$cache" "$root/tmp/onyxia-cache"
if [ -f /etc/resolv.conf ] && [ -f "$root/etc/resolv.conf" ]; then
  mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
fi
exec chroot "$root" /usr/bin/env -i "$@" /bin/sh -eu /tmp/onyxia-build/step.sh
"""


class BuildError(RuntimeError):
    """A build step failed; the message ends with the tail of its log."""


def _tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_logged(
    argv: Sequence[str], log: Path, what: str, env: Mapping[str, str] | None = None
) -> None:
    """Run a command with its output appended to log; raise BuildError with the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {shlex.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    if result.returncode != 0:
        raise BuildError(f"{what} failed (exit {result.returncode}); log {log}:\n{_tail(log)}")


@dataclass
class Chroot:
    """A tree to run build steps in: either a plain rootfs, or an overlay upper over lowers."""

    upper: Path
    lowers: Sequence[Path]
    build: Path
    cache: Path
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def _work(self) -> Path:
        return self.upper.parent / "overlay-work"

    @property
    def _merged(self) -> Path:
        return self.upper.parent / "merged"

    def run(self, script: str, what: str) -> None:
        """Run a shell script as root inside the tree (set -eu), logging its output."""
        for path in (self.upper, self._merged, self.build, self.cache):
            path.mkdir(parents=True, exist_ok=True)
        if self.lowers:
            self._work.mkdir(exist_ok=True)
        (self.build / "step.sh").write_text(script)
        env = {
            "PATH": PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "DEBIAN_FRONTEND": "noninteractive",
            "PIP_CACHE_DIR": f"{CACHE_DIR}/pip",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_ROOT_USER_ACTION": "ignore",
            "PIP_DEFAULT_TIMEOUT": "120",
            "npm_config_cache": f"{CACHE_DIR}/npm",
            "JOBS": str(os.cpu_count() or 1),
            **self.env,
        }
        lower = ":".join(str(p) for p in self.lowers)
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-euc",
            _OUTER,
            "sh",
            str(self._merged),
            str(self.upper),
            str(self._work),
            lower,
            str(self.build),
            str(self.cache),
            *(f"{k}={v}" for k, v in env.items()),
        ]
        run_logged(argv, self.log, what, env={"PATH": PATH})

    def finish(self) -> None:
        """Remove the overlay's work and mount-point directories (the upper tree stays)."""
        for path in (self._work, self._merged):
            if path.exists():
                shutil.rmtree(path)


def mmdebstrap(
    rootfs: Path,
    suite: str,
    packages: Sequence[str],
    sources: Path,
    apt_options: Sequence[str],
    log: Path,
) -> None:
    """Create a Debian minbase root filesystem in rootfs (which must not exist yet)."""
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is missing: run devtools/system-deps-images.sh")
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        f"--include={','.join(packages)}",
        *(f"--aptopt={o}" for o in apt_options),
        *(f"--dpkgopt={o}" for o in DPKG_EXCLUDES),
        suite,
        str(rootfs),
        str(sources),
    ]
    run_logged(argv, log, "mmdebstrap", env={"PATH": PATH, "LANG": "C.UTF-8"})
