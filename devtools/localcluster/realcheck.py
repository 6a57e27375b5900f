"""Can this machine run a real node? Root, the node packages (installed, or installable with
devtools/system-deps-node.sh), network namespaces, bridge netfilter, nftables, overlayfs and
usable cgroups, and a Go toolchain for the offline pause image."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from .binaries import REPO_ROOT, VERSIONS, bin_dir
from .images import build_commands
from .realnodes import RealNodeError

DEPS_SCRIPT = REPO_ROOT / "devtools" / "system-deps-node.sh"
# package -> a file it installs (the same pairs as system-deps-node.sh)
PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
    "socat": "/usr/bin/socat",
    "dnsmasq-base": "/usr/sbin/dnsmasq",
    "nginx-light": "/usr/sbin/nginx",
    "iproute2": "/usr/sbin/ip",
    "nftables": "/usr/sbin/nft",
}
CGROUP_V1_NEEDED = ("cpu", "cpuacct", "cpuset", "memory", "pids")


def missing_packages() -> list[str]:
    """The node packages whose files are absent."""
    return [pkg for pkg, path in PACKAGES.items() if not os.path.exists(path)]


def install_node_packages(say: Callable[[str], None]) -> None:
    """Run system-deps-node.sh when node packages are missing; raise if some stay missing."""
    missing = missing_packages()
    if not missing:
        return
    say(f"installing node packages {' '.join(missing)} ({DEPS_SCRIPT.name})")
    done = subprocess.run(["bash", str(DEPS_SCRIPT)], check=False)
    if done.returncode != 0 or missing_packages():
        raise RealNodeError(f"{DEPS_SCRIPT} failed; still missing: {missing_packages()}")


def _installable(packages: list[str]) -> list[str]:
    """Those of packages apt does not know (an empty list: all installable)."""
    unknown = []
    for pkg in packages:
        done = subprocess.run(["apt-cache", "show", pkg], capture_output=True, check=False)
        if done.returncode != 0:
            unknown.append(pkg)
    return unknown


def cgroup_problem() -> str | None:
    """Why the cgroups cannot host pods, or None (v1 controllers, or a populated v2)."""
    root = Path("/sys/fs/cgroup")
    controllers = root / "cgroup.controllers"
    if controllers.is_file():
        have = set(controllers.read_text().split())
        lacking = {"cpu", "memory", "pids"} - have
        return f"cgroup v2 without controllers {sorted(lacking)}" if lacking else None
    absent = [c for c in CGROUP_V1_NEEDED if not (root / c / "cgroup.procs").is_file()]
    if absent:
        return f"cgroup v1 controllers not mounted: {', '.join(absent)}"
    if not os.access(root / "memory", os.W_OK):
        return "cgroup hierarchies are read-only"
    return None


def _kernel_problem() -> str | None:
    if not Path("/proc/self/ns/net").exists():
        return "no network namespaces (/proc/self/ns/net)"
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        return "bridge netfilter (br_netfilter) is missing: Services would not work for pods"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel lacks overlayfs (containerd's snapshotter)"
    return None


def real_nodes_possible() -> tuple[bool, str]:
    """Tell whether this machine can run real nodes, and why (or why not)."""
    if os.name != "posix" or not Path("/proc/sys").is_dir():
        return False, "real nodes need Linux"
    if os.geteuid() != 0:
        return False, "real nodes need root (network namespaces, cgroups, mounts)"
    problem = _kernel_problem() or cgroup_problem()
    if problem:
        return False, problem
    if VERSIONS.source == "debian":
        return False, "the Debian 1.20 route builds no kubelet (set K8S_SOURCE=modules)"
    if not shutil.which("go") and not _images_cached():
        return False, "no Go toolchain to build the offline pause image (devtools/pause)"
    for tool in ("unshare", "nsenter", "mount", "umount"):
        if not shutil.which(tool):
            return False, f"{tool} (util-linux) is missing"
    missing = missing_packages()
    if missing:
        if not shutil.which("apt-cache"):
            return False, f"packages missing and no apt: {', '.join(missing)}"
        unknown = _installable(missing)
        if unknown and _update_would_not_help(unknown):
            return False, f"packages not installable here: {', '.join(unknown)}"
        note = f"after installing {', '.join(missing)} ({DEPS_SCRIPT.name}, done at start)"
    else:
        note = "node packages installed"
    kubelet = "kubelet cached" if (bin_dir() / "kubelet").is_file() else "kubelet to build"
    return True, f"root, cgroups and network namespaces usable; {note}; {kubelet}"


def _update_would_not_help(unknown: list[str]) -> bool:
    # An empty package list (no `apt-get update` yet) knows nothing: installable after an update.
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(lists.glob("*Packages*"))


def _images_cached() -> bool:
    try:
        build_commands()
    except (OSError, RuntimeError):
        return False
    return True
