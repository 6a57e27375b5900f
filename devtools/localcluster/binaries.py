"""Locate (and build once, if needed) the Kubernetes binaries and etcd of the local cluster.

The versions live in ``devtools/versions.env`` (one place for this module and build-k8s.sh); an
environment variable ``ONYXIA_<NAME>`` overrides each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "devtools" / "build-k8s.sh"
VERSIONS_FILE = REPO_ROOT / "devtools" / "versions.env"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
NODE_BINARIES = ("kubelet", "kube-proxy")


class BinariesError(RuntimeError):
    """A required binary is missing and could not be provided."""


def _read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@dataclass(frozen=True)
class Versions:
    """Which Kubernetes and etcd the local cluster runs, and where they come from."""

    k8s: str
    source: str  # "modules" (Go module proxy) or "debian" (Debian's 1.20.2 source package)
    etcd: str

    @classmethod
    def current(cls) -> Versions:
        """The versions in versions.env, each overridden by its ONYXIA_* variable."""
        file = _read_versions()

        def pick(key: str) -> str:
            return os.environ.get(f"ONYXIA_{key}") or file[key]

        return cls(k8s=pick("K8S_VERSION"), source=pick("K8S_SOURCE"), etcd=pick("ETCD_VERSION"))

    @property
    def minor(self) -> int:
        """The Kubernetes minor version (37 for 1.37.2)."""
        return int(self.k8s.split(".")[1])

    @property
    def binaries(self) -> tuple[str, ...]:
        """The Kubernetes binaries this source provides (Debian's route builds no node)."""
        return CONTROL_PLANE if self.source == "debian" else CONTROL_PLANE + NODE_BINARIES


VERSIONS = Versions.current()
K8S_VERSION = VERSIONS.k8s


def cache_dir() -> Path:
    """Return the onyxia-py cache directory (``$ONYXIA_CACHE_DIR`` or ``~/.cache/onyxia-py``)."""
    env = os.environ.get("ONYXIA_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "onyxia-py"


def bin_dir() -> Path:
    """Return the directory where build-k8s.sh caches the Kubernetes binaries."""
    return cache_dir() / f"k8s-{VERSIONS.k8s}" / "bin"


def etcd_path() -> Path:
    """Where build-k8s.sh caches the etcd binary (the modules route)."""
    return cache_dir() / f"etcd-{VERSIONS.etcd}" / "bin" / "etcd"


def have_binaries(directory: Path | None = None) -> bool:
    """Tell whether every binary of the configured source is present and executable."""
    d = directory or bin_dir()
    kube = all(os.access(d / name, os.X_OK) for name in VERSIONS.binaries)
    return kube and (VERSIONS.source == "debian" or os.access(etcd_path(), os.X_OK))


def ensure_binaries() -> Path:
    """Return the bin dir holding the Kubernetes binaries, building them first if missing."""
    directory = bin_dir()
    if have_binaries(directory):
        return directory
    if not BUILD_SCRIPT.is_file():
        raise BinariesError(
            f"binaries missing in {directory} and no build script at {BUILD_SCRIPT}"
        )
    print(
        f"[localcluster] building Kubernetes {VERSIONS.k8s} and etcd (cached once built)",
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
        raise BinariesError(f"{BUILD_SCRIPT} succeeded but {directory} lacks some binaries")
    return directory


def find_etcd() -> Path:
    """Return the etcd binary: the one built from modules, or Debian's on the Debian route."""
    if VERSIONS.source != "debian":
        path = etcd_path()
        if not os.access(path, os.X_OK):
            raise BinariesError(f"etcd missing at {path}: run `make k8s`")
        return path
    found = shutil.which("etcd")
    if not found and os.access("/usr/bin/etcd", os.X_OK):
        # root's PATH from a service or sudo may lack /usr/bin entries we rely on
        found = "/usr/bin/etcd"
    if not found:
        raise BinariesError("etcd not found: install it with `apt-get install -y etcd-server`")
    return Path(found)
