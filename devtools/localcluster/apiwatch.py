"""List and watch API collections, and run a controller that keeps a daemon in sync with them."""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import httpx

from .kubeconfig import ClientConfig

JSON = dict[str, Any]

SERVICES = "/api/v1/services"
ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
INGRESSES = "/apis/networking.k8s.io/v1/ingresses"

log = logging.getLogger("apiwatch")


class _GoneError(Exception):
    """The watch's resourceVersion is too old (HTTP 410): a fresh list is needed."""


class Reflector:
    """A local copy of one cluster-wide collection, kept in sync by list then watch."""

    def __init__(
        self,
        cfg: ClientConfig,
        path: str,
        changed: threading.Event,
        stopping: threading.Event,
        max_backoff: float = 10.0,
    ) -> None:
        self.cfg = cfg
        self.path = path
        self.changed = changed
        self.stopping = stopping
        self.max_backoff = max_backoff
        self.synced = threading.Event()
        self._items: dict[tuple[str, str], JSON] = {}
        self._lock = threading.Lock()

    def items(self) -> list[JSON]:
        """Return a snapshot of the objects, ordered by namespace and name."""
        with self._lock:
            return [self._items[k] for k in sorted(self._items)]

    def start(self) -> threading.Thread:
        """Run the list/watch loop in a daemon thread."""
        name = f"watch {self.path.rsplit('/', 1)[-1]}"
        thread = threading.Thread(target=self.run, name=name, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410, back off on errors."""
        rv: str | None = None
        backoff = 0.5
        with self.cfg.client(timeout=10.0) as client:
            while not self.stopping.is_set():
                try:
                    if rv is None:
                        rv = self._list(client)
                    rv = self._watch(client, rv)
                    backoff = 0.5
                    continue
                except _GoneError:
                    log.info("%s: resourceVersion %s expired; re-listing", self.path, rv)
                    rv = None
                    continue
                except (httpx.HTTPError, ValueError, KeyError) as e:
                    log.warning("%s: %s; retrying in %.1fs", self.path, e or type(e), backoff)
                except Exception:
                    # A surprise must not end the thread: the copy would silently go stale.
                    log.exception("%s: unexpected error; retrying in %.1fs", self.path, backoff)
                    rv = None
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, self.max_backoff)

    def _list(self, client: httpx.Client) -> str:
        items: dict[tuple[str, str], JSON] = {}
        params = {"limit": "500"}
        while True:
            r = client.get(self.path, params=params)
            r.raise_for_status()
            data = r.json()
            for obj in data.get("items", []):
                items[_key(obj)] = _slim(obj)
            meta = data.get("metadata", {})
            if not meta.get("continue"):
                break
            params["continue"] = meta["continue"]
        with self._lock:
            self._items = items
        self.synced.set()
        self.changed.set()
        return str(meta["resourceVersion"])

    def _watch(self, client: httpx.Client, rv: str) -> str:
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = httpx.Timeout(10.0, read=360.0)
        with client.stream("GET", self.path, params=params, timeout=timeout) as r:
            if r.status_code == 410:
                raise _GoneError
            r.raise_for_status()
            for line in r.iter_lines():
                if self.stopping.is_set():
                    break
                if not line.strip():
                    continue
                ev: JSON = json.loads(line)
                kind, obj = ev.get("type", ""), ev.get("object", {})
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _GoneError
                    raise ValueError(f"watch error {obj.get('code')}: {obj.get('message')}")
                rv = str(obj.get("metadata", {}).get("resourceVersion", rv))
                if kind != "BOOKMARK":
                    self._apply(kind, obj)
        return rv

    def _apply(self, kind: str, obj: JSON) -> None:
        key = _key(obj)
        with self._lock:
            if kind == "DELETED":
                self._items.pop(key, None)
            else:
                self._items[key] = _slim(obj)
        self.changed.set()


def _key(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _slim(obj: JSON) -> JSON:
    # managedFields are most of an object's size and nothing here reads them.
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


class Daemon(Protocol):
    """A child daemon whose configuration follows the reflectors."""

    def sync(self) -> None:
        """Regenerate the configuration and reload the daemon if it changed."""

    def check(self) -> None:
        """Start the daemon again if it exited."""

    def stop(self) -> None:
        """Stop the daemon."""


def run_controller(
    reflectors: Sequence[Reflector],
    daemon: Daemon,
    changed: threading.Event,
    stopping: threading.Event,
    *,
    sync_timeout: float = 10.0,
    debounce: float = 0.05,
) -> None:
    """Watch until SIGTERM/SIGINT, syncing the daemon after each burst of changes."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()
        changed.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    become_subreaper()
    for r in reflectors:
        r.start()
    deadline = time.monotonic() + sync_timeout
    while not all(r.synced.is_set() for r in reflectors) and not stopping.is_set():
        if time.monotonic() > deadline:
            late = ", ".join(r.path for r in reflectors if not r.synced.is_set())
            log.warning(
                "%s not listed after %.0fs; starting with what is known", late, sync_timeout
            )
            break
        stopping.wait(0.05)
    try:
        changed.clear()
        daemon.sync()
        while not stopping.is_set():
            if changed.wait(1.0) and not stopping.is_set():
                # Let a burst of events (a chart install touches many objects) land first.
                if stopping.wait(debounce):
                    break
                changed.clear()
                _logged(daemon.sync)
            _logged(daemon.check)
    finally:
        daemon.stop()


def _logged(step: Callable[[], None]) -> None:
    try:
        step()
    except (OSError, subprocess.SubprocessError) as e:
        log.error("%s failed: %s", getattr(step, "__name__", "step"), e)


def spawn_daemon(argv: Sequence[str]) -> subprocess.Popen[bytes]:
    """Start a child daemon that gets SIGTERM if this controller dies (setpriv --pdeathsig)."""
    setpriv = shutil.which("setpriv")
    wrapper = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
    return subprocess.Popen([*wrapper, *argv], stdin=subprocess.DEVNULL)


class ChildDaemon:
    """A daemon run as our child (dnsmasq, nginx): started, reloaded with SIGHUP, restarted at
    most every 2 s if it exits, stopped with us. Subclasses give its name and command line."""

    name = "daemon"

    def __init__(self, pid_file: Path) -> None:
        self.pid_file = pid_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_start = 0.0

    def command(self) -> list[str]:
        """The daemon's command line."""
        raise NotImplementedError

    def reload(self) -> None:
        """Make the daemon read its configuration again (start it if it does not run)."""
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        else:
            self.proc.send_signal(signal.SIGHUP)

    def start(self) -> None:
        """Start the daemon and wait (up to 5 s) until its pid file names it."""
        self.pid_file.unlink(missing_ok=True)
        self.last_start = time.monotonic()
        proc = self.proc = spawn_daemon(self.command())
        # The daemon writes its pid file once it listens and handles signals; a SIGHUP before
        # then would kill it.
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and proc.poll() is None:
            if self.pid_file.is_file() and self.pid_file.read_text().strip() == str(proc.pid):
                log.info("%s started (pid %d)", self.name, proc.pid)
                return
            time.sleep(0.02)
        code = proc.poll()
        log.warning("%s (pid %d) not ready after 5s (exit code %s)", self.name, proc.pid, code)

    def check(self) -> None:
        """Start the daemon again (at most every 2 s) if it exited."""
        if self.proc is None or self.proc.poll() is None:
            return
        if time.monotonic() - self.last_start < 2.0:
            return
        log.warning("%s exited with code %s; starting it again", self.name, self.proc.returncode)
        kill_orphans()
        self.start()

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL)."""
        stop_daemon(self.proc, self.name)


def stop_daemon(proc: subprocess.Popen[bytes] | None, name: str, timeout: float = 5.0) -> None:
    """SIGTERM a child daemon, SIGKILL it after timeout, reap it and any orphan it left."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", name, timeout)
            proc.kill()
            proc.wait()
        log.info("%s stopped", name)
    kill_orphans()


def become_subreaper() -> None:
    """Adopt the orphans of our daemons (nginx workers whose master died) so none outlives us."""
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d", ctypes.get_errno())


def kill_orphans() -> None:
    """SIGKILL and reap our remaining children: call it only once the daemon has exited."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[1]) != me:
            continue
        pid = int(entry.name)
        log.warning("stopping orphan pid %d left by a daemon that died", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def find_binary(name: str) -> str | None:
    """Return the path of a daemon binary, also looking in /usr/sbin (not on every PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
