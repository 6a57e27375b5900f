"""Start detached processes, record their pids, and stop exactly those processes later."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    """A process we started: its name, pid and a string its cmdline must contain."""

    name: str
    pid: int
    match: str


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    match: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[ProcessRecord, subprocess.Popen[bytes]]:
    """Start argv in its own session with output to ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        # A new session keeps the process alive after the CLI that started it exits,
        # and out of the reach of the terminal's Ctrl-C.
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    return ProcessRecord(name=name, pid=proc.pid, match=match), proc


def write_pids(path: Path, records: Sequence[ProcessRecord]) -> None:
    """Atomically write the process records to a JSON file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(r) for r in records], indent=2))
    tmp.replace(path)


def read_pids(path: Path) -> list[ProcessRecord]:
    """Read process records written by write_pids (empty if the file is missing or broken)."""
    try:
        raw = json.loads(path.read_text())
        return [
            ProcessRecord(name=str(r["name"]), pid=int(r["pid"]), match=str(r["match"]))
            for r in raw
        ]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def is_alive(record: ProcessRecord) -> bool:
    """Tell whether the recorded process still runs the command we started (not a reused pid)."""
    proc = Path(f"/proc/{record.pid}")
    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    # The state letter follows the parenthesised command name; a zombie has already exited.
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state in ("Z", "X"):
        return False
    return record.match in cmdline


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    if is_alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)


def _reap(pid: int) -> None:
    # Only our own children can be reaped; for others waitpid raises ChildProcessError.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def terminate(records: Sequence[ProcessRecord], timeout: float = 10.0) -> list[str]:
    """SIGTERM the live records, wait up to timeout, SIGKILL stragglers; return killed names."""
    for r in records:
        _signal(r, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in records:
            _reap(r.pid)
        if not any(is_alive(r) for r in records):
            return []
        time.sleep(0.1)
    killed = [r.name for r in records if is_alive(r)]
    for r in records:
        _signal(r, signal.SIGKILL)
    time.sleep(0.2)
    for r in records:
        _reap(r.pid)
    return killed
