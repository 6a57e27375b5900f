"""What real nodes change on the machine as a whole, saved by the first cluster that runs real
nodes and restored by the last one to stop: global sysctls the kubelet sets, and the system
directories that kubelet, containerd and libcni create whatever their own directories are.

The record lives in /run/onyxia-localcluster/ (a lock directory plus host.json) while at least one
cluster holds it; a holder counts while its bridge exists, so a crashed cluster's stop still works.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORD_DIR = Path("/run/onyxia-localcluster")

# The kubelet sets these at start (unless protectKernelDefaults, which then refuses to start).
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)

# Created by kubelet (/var/log/containers and its device-plugin socket: always), containerd's
# shims (/run/containerd/s: always) and libcni (/var/lib/cni: its result cache), outside any
# directory we can configure. Children before parents.
DEVICE_PLUGINS = "/var/lib/kubelet/device-plugins"
SHARED_DIRS = (
    DEVICE_PLUGINS,
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni/results",
    "/var/lib/cni",
    "/run/containerd/s",
    "/run/containerd",
)


@dataclass(frozen=True)
class HostPaths:
    """Where the record, sysctls, shared dirs and network interfaces are (tests use others)."""

    record_dir: Path = RECORD_DIR
    proc_sys: Path = Path("/proc/sys")
    shared_dirs: tuple[str, ...] = SHARED_DIRS
    device_plugins: str = DEVICE_PLUGINS
    net: Path = Path("/sys/class/net")


HOST = HostPaths()


@contextlib.contextmanager
def _locked(record_dir: Path) -> Iterator[Path]:
    """Hold an exclusive lock on the record directory (re-created when a last holder removed it)."""
    while True:
        record_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(record_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(record_dir).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield record_dir / "host.json"
                return
        finally:
            os.close(fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def _read_sysctl(proc_sys: Path, name: str) -> str | None:
    try:
        return (proc_sys / name).read_text().strip()
    except OSError:
        return None


def acquire(holder: str, host: HostPaths = HOST) -> None:
    """Register holder (a bridge name); the first holder saves sysctls and which dirs exist."""
    with _locked(host.record_dir) as path:
        data = _read(path)
        holders = [h for h in data.get("holders", []) if (host.net / h).exists() and h != holder]
        # A record without live holders is a crashed run's: its saved values are the originals.
        if not data:
            saved = {n: _read_sysctl(host.proc_sys, n) for n in KUBELET_SYSCTLS}
            data = {
                "sysctls": {n: v for n, v in saved.items() if v is not None},
                "existing": [d for d in host.shared_dirs if os.path.lexists(d)],
            }
        data["holders"] = [*holders, holder]
        path.write_text(json.dumps(data, indent=2))


def release(holder: str, host: HostPaths = HOST) -> list[str]:
    """Unregister holder; the last one restores sysctls and removes dirs that were absent."""
    problems: list[str] = []
    if not host.record_dir.exists():
        return problems
    with _locked(host.record_dir) as path:
        data = _read(path)
        holders = [h for h in data.get("holders", []) if (host.net / h).exists() and h != holder]
        if holders:
            data["holders"] = holders
            path.write_text(json.dumps(data, indent=2))
            return problems
        for name, value in data.get("sysctls", {}).items():
            try:
                (host.proc_sys / name).write_text(value)
            except OSError as e:
                problems.append(f"sysctl {name}={value}: {e}")
        existing = set(data.get("existing", host.shared_dirs))
        if host.device_plugins not in existing:
            # Only the kubelets' own socket and checkpoint live there; none runs any more.
            shutil.rmtree(host.device_plugins, ignore_errors=True)
        for d in host.shared_dirs:
            if d not in existing and os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError as e:
                    if e.errno not in (errno.ENOTEMPTY, errno.ENOENT):
                        problems.append(f"rmdir {d}: {e}")
        path.unlink(missing_ok=True)
        # Removed while still locked: a waiter then sees a new inode and starts over.
        shutil.rmtree(host.record_dir, ignore_errors=True)
    return problems


def _socket_dead(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(str(path))
    except OSError:
        return True
    finally:
        s.close()
    return False


def clean_shared_entries(pod_logs: list[Path], networks: list[str]) -> list[str]:
    """Remove what our nodes left in the shared dirs: log symlinks into pod_logs, libcni results
    of our networks, and shim sockets nobody listens on; return what failed."""
    problems: list[str] = []
    logs = Path("/var/log/containers")
    roots = [str(p.resolve()) + os.sep for p in pod_logs]
    if logs.is_dir():
        for link in logs.iterdir():
            target = os.readlink(link) if link.is_symlink() else ""
            if target and any(target.startswith(r) for r in roots):
                link.unlink(missing_ok=True)
    results = Path("/var/lib/cni/results")
    if results.is_dir():
        for f in results.iterdir():
            if any(f.name.startswith(f"{n}-") for n in networks):
                f.unlink(missing_ok=True)
    shims = Path("/run/containerd/s")
    if shims.is_dir():
        for sock in shims.iterdir():
            if sock.is_socket() and _socket_dead(sock):
                try:
                    sock.unlink()
                except OSError as e:
                    problems.append(f"{sock}: {e}")
    return problems
