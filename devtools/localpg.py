"""A throwaway PostgreSQL server for tests: Debian's binaries, a temp data dir, a free port.

PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` user
(created by Debian's package) and its data dir is handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from devtools.ports import free_port


def find_bin_dir() -> Path:
    """The directory holding initdb and postgres (Debian installs them per major version)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "postgres").exists():
            return directory
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")


def _children(parent: int) -> list[int]:
    """The pids whose parent is `parent` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


class LocalPostgres:
    """Start with `start()` (or `with`), connect with `url`, stop with `stop()`; for fault
    tests, `halt()`/`resume()` stop and restart it and `freeze()`/`thaw()` suspend it."""

    def __init__(self, database: str = "onyxia", user: str = "onyxia") -> None:
        self.database = database
        self.user = user
        self.password = os.urandom(12).hex()
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="onyxia-pg-"))
        self._data = self._root / "data"
        self._proc: subprocess.Popen[bytes] | None = None
        self._bin = find_bin_dir()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The SQLAlchemy async URL of the database."""
        return f"postgresql+asyncpg://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _run_as(self) -> tuple[int | None, int | None]:
        if not self._as_postgres:
            return None, None
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster, start the server, create the user and database."""
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self._root, entry.pw_uid, entry.pw_gid)
        uid, gid = self._run_as()
        password_file = self._root / "pwfile"
        password_file.write_text(self.password + "\n")
        if self._as_postgres:
            os.chown(password_file, pwd.getpwnam("postgres").pw_uid, -1)
        password_file.chmod(0o600)
        subprocess.run(
            [
                str(self._bin / "initdb"),
                "-D",
                str(self._data),
                "-U",
                self.user,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=uid,
            group=gid,
        )
        password_file.unlink()
        self._spawn(timeout)
        self._createdb()

    def _spawn(self, timeout: float) -> None:
        """Start the server on the existing data dir and wait until it listens."""
        uid, gid = self._run_as()
        log = (self._root / "postgres.log").open("ab")
        self._proc = subprocess.Popen(
            [
                str(self._bin / "postgres"),
                "-D",
                str(self._data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self._root}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=uid,
            group=gid,
        )
        log.close()  # the child holds its own copy
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"postgres did not listen within {timeout}s: {self._log_tail()}")

    def _createdb(self) -> None:
        # The bootstrap superuser owns a `postgres` database; create ours through psql over TCP.
        env = {**os.environ, "PGPASSWORD": self.password}
        deadline = time.monotonic() + 15
        while True:
            result = subprocess.run(
                [
                    str(self._bin / "psql") if (self._bin / "psql").exists() else "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    self.user,
                    "-d",
                    "postgres",
                    "-c",
                    f'CREATE DATABASE "{self.database}"',
                ],
                env=env,
                capture_output=True,
            )
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot create database: {result.stderr.decode()}")
            time.sleep(0.2)

    def _log_tail(self) -> str:
        log = self._root / "postgres.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def halt(self) -> None:
        """Stop the server (fast shutdown: sessions are ended) and keep its data for `resume`."""
        if self._proc is not None and self._proc.poll() is None:
            self.thaw()  # a stopped process would not act on the shutdown signal
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def resume(self, timeout: float = 30.0) -> None:
        """Start a halted server again, on the same port with the same data."""
        if self._proc is None or self._proc.poll() is not None:
            self._spawn(timeout)

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: connections stay open, nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what `freeze` stopped."""
        self._signal_all(signal.SIGCONT)

    def _signal_all(self, signum: signal.Signals) -> None:
        # Each backend calls setsid(): signal the postmaster (first, so it forks no more) and
        # then each of its children, found by their parent pid.
        if self._proc is None or self._proc.poll() is not None:
            return
        os.kill(self._proc.pid, signum)
        for pid in _children(self._proc.pid):
            with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                os.kill(pid, signum)

    def stop(self) -> None:
        """Stop the server it started and delete its data."""
        self.halt()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
