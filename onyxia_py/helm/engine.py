"""The Helm engine the domain talks to: a Protocol, so any implementation (in-process SDK,
a CLI wrapper, a fake in unit tests) can stand behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from onyxia_py.identity import Impersonation
from onyxia_py.keyed_locks import KeyedLocks

Values = dict[str, Any]


class Cancellation:
    """Lets another task stop a long Helm action (e.g. an install that can never succeed)."""

    def __init__(self) -> None:
        self.cancelled = False
        self.reason = ""  # why, when the canceller said ("deleted": the service is being removed)
        self._callbacks: list[Callable[[], None]] = []

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Run `callback` when cancelled (at once if already cancelled)."""
        self._callbacks.append(callback)
        if self.cancelled:
            callback()

    def cancel(self, reason: str = "") -> None:
        """Ask the action to stop (the first reason given is kept)."""
        if not self.cancelled:
            self.reason = reason
        self.cancelled = True
        for callback in self._callbacks:
            callback()


@dataclass(frozen=True)
class ReleaseInfo:
    """What Helm knows of one release."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str
    chart_version: str
    app_version: str
    updated: str
    notes: str = ""


DELETED = "deleted"  # the reason given when an uninstall stops an install


class ReleaseLocks(Protocol):
    """One Helm action per release at a time (concurrent writes corrupt its history).

    An uninstall that finds an install holding the release asks it to stop (its cancellation,
    reason `DELETED`) instead of waiting for it."""

    def hold(
        self,
        namespace: str,
        release: str,
        operation: str,
        cancellation: Cancellation | None = None,
    ) -> AbstractAsyncContextManager[None]:
        """Hold the release's lock for `operation` ("install", "upgrade", "uninstall")."""
        ...


class ProcessLocks:
    """Release locks inside one process: enough when a single replica runs."""

    def __init__(self) -> None:
        self._locks: KeyedLocks[tuple[str, str]] = KeyedLocks()  # dropped by the last user
        self._holders: dict[tuple[str, str], tuple[str, Cancellation | None]] = {}

    @asynccontextmanager
    async def hold(
        self,
        namespace: str,
        release: str,
        operation: str,
        cancellation: Cancellation | None = None,
    ) -> AsyncIterator[None]:
        """Hold the release's lock; an uninstall stops the install holding it."""
        key = (namespace, release)
        holder = self._holders.get(key)
        if operation == "uninstall" and holder is not None and holder[0] == "install":
            stop = holder[1]
            if stop is not None:
                stop.cancel(DELETED)
        async with self._locks.hold(key):
            self._holders[key] = (operation, cancellation)
            try:
                yield
            finally:
                del self._holders[key]

    def __len__(self) -> int:
        """How many releases have a lock now (held or waited for)."""
        return len(self._locks)


class HelmEngine(Protocol):
    """Render and manage releases; every call may act as an impersonated user."""

    async def render(
        self, chart: Path, values: Values, *, release: str, namespace: str
    ) -> dict[str, str]:
        """The manifests `chart` renders to with `values`, by template path (no cluster)."""
        ...

    async def install(
        self,
        chart: Path,
        *,
        release: str,
        namespace: str,
        values: Values,
        as_: Impersonation | None = None,
        wait: bool = True,
        timeout_seconds: int | None = None,
        description: str | None = None,
        dry_run: bool = False,
        cancellation: Cancellation | None = None,
    ) -> ReleaseInfo:
        """Install `chart` as `release`; with `wait`, return once its resources are ready.

        With `dry_run`, the API server validates every manifest and nothing is created."""
        ...

    async def upgrade(
        self,
        chart: Path,
        *,
        release: str,
        namespace: str,
        values: Values,
        as_: Impersonation | None = None,
        wait: bool = True,
        timeout_seconds: int | None = None,
    ) -> ReleaseInfo:
        """Upgrade `release` to `chart` with `values` (which replace the previous ones)."""
        ...

    async def uninstall(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Remove `release` and its resources."""
        ...

    async def list(self, namespace: str, *, as_: Impersonation | None = None) -> list[ReleaseInfo]:
        """Every release of `namespace`, whatever its state."""
        ...

    async def status(
        self, release: str, *, namespace: str, as_: Impersonation | None = None
    ) -> ReleaseInfo:
        """The current state of `release`, with its notes."""
        ...

    async def get_values(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        all_values: bool = False,
    ) -> Values:
        """The values given at install (or, with `all_values`, merged with the chart's)."""
        ...
