"""What a process holds and has used, read from /proc (Linux): RSS, threads, open fds, TCP
connections to a port, CPU time, each summed over the process and its children (a server's
worker processes). Shared by the scale benchmark and the tests of several workers."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessState:
    """What a process holds, read from /proc."""

    rss_mb: float
    threads: int
    fds: int
    api_connections: int


def tree(pid: int) -> list[int]:
    """`pid` and its descendants (a server's worker processes)."""
    found = [pid]
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            found += tree(int(child))
    return found


def process_state(pid: int, api_port: int) -> ProcessState:
    """RSS, threads, open fds and established TCP connections to `api_port` of `pid` and its
    worker processes, summed."""
    states = [_one_state(p, api_port) for p in tree(pid)]
    return ProcessState(
        rss_mb=sum(s.rss_mb for s in states),
        threads=sum(s.threads for s in states),
        fds=sum(s.fds for s in states),
        api_connections=sum(s.api_connections for s in states),
    )


def _one_state(pid: int, api_port: int) -> ProcessState:
    """RSS, threads, open fds and established TCP connections to `api_port` of `pid`."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return ProcessState(
        rss_mb=int(status["VmRSS"].split()[0]) / 1024,
        threads=int(status["Threads"]),
        fds=sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
        api_connections=connections_to(pid, api_port),
    )


def connections_to(pid: int, port: int) -> int:
    """Established TCP connections of `pid` to a remote `port`."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    connections = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[3] == "01" and remote_port == port and fields[9] in sockets:
                    connections += 1
    return connections


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` and its worker processes have used."""
    total = 0.0
    for one in tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
