"""Locate (and build once, if needed) the Kubernetes control-plane binaries and etcd."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

K8S_VERSION = os.environ.get("ONYXIA_K8S_VERSION", "1.20.2")
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "devtools" / "build-k8s.sh"


class BinariesError(RuntimeError):
    """A required binary is missing and could not be provided."""


def cache_dir() -> Path:
    """Return the onyxia-py cache directory (``$ONYXIA_CACHE_DIR`` or ``~/.cache/onyxia-py``)."""
    env = os.environ.get("ONYXIA_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "onyxia-py"


def bin_dir() -> Path:
    """Return the directory where build-k8s.sh caches the binaries for K8S_VERSION."""
    return cache_dir() / f"k8s-{K8S_VERSION}" / "bin"


def have_binaries(directory: Path | None = None) -> bool:
    """Tell whether all control-plane binaries are present and executable."""
    d = directory or bin_dir()
    return all(os.access(d / name, os.X_OK) for name in BINARIES)


def ensure_binaries() -> Path:
    """Return the bin dir holding the control-plane binaries, building them first if missing."""
    directory = bin_dir()
    if have_binaries(directory):
        return directory
    if not BUILD_SCRIPT.is_file():
        raise BinariesError(
            f"binaries missing in {directory} and no build script at {BUILD_SCRIPT}"
        )
    print(
        f"[localcluster] building Kubernetes {K8S_VERSION} binaries (several minutes)",
        file=sys.stderr,
        flush=True,
    )
    # Inherit stderr so the build's progress lines reach the user as they come.
    try:
        out: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        # Captured stderr (pytest) has no file descriptor; let the child inherit ours.
        out = None
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=out, check=False)
    if proc.returncode != 0:
        raise BinariesError(f"{BUILD_SCRIPT} failed with exit code {proc.returncode}")
    if not have_binaries(directory):
        raise BinariesError(f"{BUILD_SCRIPT} succeeded but {directory} lacks {', '.join(BINARIES)}")
    return directory


def find_etcd() -> Path:
    """Return the path of the etcd binary (Debian package ``etcd-server``)."""
    found = shutil.which("etcd")
    if not found and os.access("/usr/bin/etcd", os.X_OK):
        # root's PATH from a service or sudo may lack /usr/bin entries we rely on
        found = "/usr/bin/etcd"
    if not found:
        raise BinariesError("etcd not found: install it with `apt-get install -y etcd-server`")
    return Path(found)
