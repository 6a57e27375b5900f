"""Release locks shared by the replicas: one Lease per release being changed.

Helm keeps a release's history in Secrets that two writers corrupt, so one Helm action per release
runs at a time, in the whole installation. Inside a process an asyncio lock decides (no API call
for a release this process already works on); between processes a Lease in the platform's own
namespace does. The holder renews it while Helm works and deletes it at the end; a replica that
died leaves a Lease that nobody renews, which others take once it has not changed for its whole
duration on their own clock (as leader election does).

An uninstall that finds another replica installing the release writes a request on the Lease; the
installing replica reads it at its next renewal and cancels the install (reason `DELETED`), so a
DELETE never waits for a whole install, whichever replica answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from onyxia_py.errors import Conflict, OnyxiaError, Unavailable
from onyxia_py.helm import DELETED, Cancellation, ProcessLocks
from onyxia_py.kube import LeaseRecord
from onyxia_py.leadership.core import Leases

log = logging.getLogger(__name__)
# Deletes of a held Lease tried before leaving it to expire.
RELEASE_ATTEMPTS = 3

RELEASE = "onyxia-py.io/release"  # namespace/release the Lease locks
OPERATION = "onyxia-py.io/operation"  # install, upgrade or uninstall
STOP = "onyxia-py.io/stop-requested"  # set by an uninstall that wants the install to stop


@dataclass(frozen=True)
class LockTiming:
    """How long a Lease lasts unrenewed, how often the holder renews, how long one waits."""

    duration_seconds: int = 15
    renew_seconds: float = 2.0  # also how soon a holder sees a request to stop
    poll_seconds: float = 0.5  # the first pause of a waiter (then doubled, at most 2 s)
    max_wait_seconds: float = 600.0  # a waiter gives up after this (503: try again)


class LockLeases(Leases, Protocol):
    """Leases that can also be deleted (a lock is removed when released)."""

    async def delete(self, name: str, resource_version: str = "") -> None:
        """Delete it if still at `resource_version`; Conflict otherwise; gone is fine."""
        ...


def lease_name(namespace: str, release: str) -> str:
    """The Lease that locks `release` of `namespace` (a hash: names fit and never collide)."""
    digest = hashlib.sha256(f"{namespace}/{release}".encode()).hexdigest()[:20]
    return f"onyxia-release-{digest}"


class LeaseLocks:
    """`ReleaseLocks` across replicas, over Leases as the platform."""

    def __init__(self, leases: LockLeases, identity: str, timing: LockTiming | None = None) -> None:
        self._leases = leases
        self.identity = identity
        self._timing = timing or LockTiming()
        self._local = ProcessLocks()

    @asynccontextmanager
    async def hold(
        self,
        namespace: str,
        release: str,
        operation: str,
        cancellation: Cancellation | None = None,
    ) -> AsyncIterator[None]:
        """Hold the release's lock for `operation`, here and in every other replica."""
        async with self._local.hold(namespace, release, operation, cancellation):
            name = lease_name(namespace, release)
            held = await self._acquire(name, namespace, release, operation, cancellation)
            renewer = asyncio.create_task(
                self._renew(name, held, cancellation), name=f"release-lock-{release}"
            )
            try:
                yield
            finally:
                renewer.cancel()
                last = await asyncio.gather(renewer, return_exceptions=True)
                mine = last[0] if isinstance(last[0], LeaseRecord) else held
                await self._release(name, mine)

    async def _acquire(
        self,
        name: str,
        namespace: str,
        release: str,
        operation: str,
        cancellation: Cancellation | None,
    ) -> LeaseRecord:
        timing = self._timing
        deadline = time.monotonic() + timing.max_wait_seconds
        pause = timing.poll_seconds
        seen: LeaseRecord | None = None
        seen_at = 0.0
        while True:
            now = datetime.now(UTC)
            mine = LeaseRecord(
                holder=self.identity,
                duration_seconds=timing.duration_seconds,
                acquired_at=now,
                renewed_at=now,
                annotations={RELEASE: f"{namespace}/{release}", OPERATION: operation},
            )
            try:
                current = await self._leases.get(name)
                if current is None:
                    return await self._leases.create(name, mine)
                if seen is None or current.resource_version != seen.resource_version:
                    seen, seen_at = current, time.monotonic()
                if current.holder == self.identity:
                    # Left by this process (a release it could not delete): nobody else here
                    # holds it, the local lock says so.
                    return await self._leases.update(
                        name, replace(mine, resource_version=current.resource_version)
                    )
                if time.monotonic() - seen_at >= current.duration_seconds:
                    # Nobody renewed it for its whole duration: its holder is gone.
                    log.warning(
                        "release lock %s/%s: taking over from %s, who stopped renewing it",
                        namespace,
                        release,
                        current.holder or "nobody",
                    )
                    taken = replace(mine, resource_version=current.resource_version)
                    return await self._leases.update(name, taken)
                if (
                    operation == "uninstall"
                    and current.annotations.get(OPERATION) == "install"
                    and STOP not in current.annotations
                ):
                    await self._request_stop(name, current)
            except Conflict:
                pass  # another replica wrote it between our read and our write: read again
            except OnyxiaError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("release lock %s/%s: %s", namespace, release, exc.detail)
            if cancellation is not None and cancellation.cancelled:
                raise Unavailable(f"{release}: stopped while waiting for another operation")
            if time.monotonic() >= deadline:
                holder = seen.holder if seen is not None else "another replica"
                raise Unavailable(
                    f"{release} is busy with another operation (held by {holder}): try again"
                )
            await asyncio.sleep(pause * random.uniform(1.0, 1.2))  # noqa: S311 (jitter)
            pause = min(pause * 2, 2.0)

    async def _request_stop(self, name: str, current: LeaseRecord) -> None:
        log.info(
            "release lock %s: asking %s to stop installing it (an uninstall waits)",
            current.annotations.get(RELEASE, name),
            current.holder,
        )
        requested = {**current.annotations, STOP: self.identity}
        await self._leases.update(name, replace(current, annotations=requested))

    async def _renew(
        self, name: str, held: LeaseRecord, cancellation: Cancellation | None
    ) -> LeaseRecord:
        """Renew until cancelled; stop the install when asked to. Returns the last record."""
        mine = held
        try:
            while True:
                await asyncio.sleep(self._timing.renew_seconds)
                try:
                    mine = await self._leases.update(
                        name, replace(mine, renewed_at=datetime.now(UTC))
                    )
                    continue
                except Conflict:
                    pass  # written by someone else: read what they want
                except OnyxiaError as exc:
                    log.warning("renewing release lock %s: %s", name, exc.detail)
                    continue
                with contextlib.suppress(OnyxiaError):
                    current = await self._leases.get(name)
                    if current is None or current.holder != self.identity:
                        log.warning("release lock %s was taken over while held here", name)
                        if cancellation is not None:
                            cancellation.cancel()
                        return mine
                    mine = current
                    if STOP in current.annotations and cancellation is not None:
                        log.info(
                            "release lock %s: stopping, asked by %s",
                            name,
                            current.annotations[STOP],
                        )
                        cancellation.cancel(DELETED)
        except asyncio.CancelledError:
            return mine

    async def _release(self, name: str, mine: LeaseRecord) -> None:
        """Delete the Lease if it is still ours; at worst it expires. A renewal cancelled just
        before may still land (its request was sent): then read it again and delete that."""
        try:
            for attempt in range(RELEASE_ATTEMPTS):
                current = await self._leases.get(name)
                if current is None or current.holder != self.identity:
                    return
                try:
                    await self._leases.delete(name, current.resource_version)
                    return
                except Conflict:
                    if attempt == RELEASE_ATTEMPTS - 1:
                        raise
        except OnyxiaError as exc:
            log.warning(
                "releasing release lock %s: %s (it expires in %d s)",
                name,
                exc.detail,
                mine.duration_seconds,
            )
