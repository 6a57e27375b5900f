"""Launch progress kept in memory and streamed to whoever follows it.

The replica that accepted a launch tracks it here, and saves each step on the service's record
too (`Launch.save`), where every other replica's cache sees it: a follower anywhere gets the same
phases (`services.following`). Finished launches are forgotten after an hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onyxia_py.errors import OnyxiaError
from onyxia_py.services.models import FailureReason, LaunchEvent, Phase

log = logging.getLogger(__name__)

RETENTION_SECONDS = 3600.0


@dataclass
class Launch:
    """One launch's events so far."""

    release: str
    namespace: str
    owner: str
    events: list[LaunchEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    finished_at: float | None = None
    # Stores the events where other replicas read them (the service's record); the latest
    # events at the time it runs, so saves that overlap never put older ones back.
    save: Callable[[], Awaitable[None]] | None = None
    saving: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def phase(self) -> Phase:
        """The latest phase."""
        return self.events[-1].phase if self.events else Phase.ACCEPTED

    @property
    def failure(self) -> str | None:
        """Why the launch failed, once it has."""
        last = self.events[-1] if self.events else None
        return last.message if last is not None and last.reason is not None else None

    @property
    def live(self) -> bool:
        """Whether this launch says more than the cluster does: still going, or failed (a
        failed launch is rolled back, so only its events keep the reason)."""
        return not self.phase.final or self.failure is not None


class LaunchTracker:
    """Every launch of this process, by (namespace, release)."""

    def __init__(self) -> None:
        self._launches: dict[tuple[str, str], Launch] = {}

    def start(
        self, namespace: str, release: str, owner: str, first: LaunchEvent | None = None
    ) -> Launch:
        """Track a new launch (with its first event, already saved with the record)."""
        self._forget_old()
        launch = Launch(release, namespace, owner, events=[first] if first else [])
        self._launches[(namespace, release)] = launch
        return launch

    def get(self, namespace: str, release: str) -> Launch | None:
        """A tracked launch."""
        return self._launches.get((namespace, release))

    async def record(
        self,
        launch: Launch,
        phase: Phase,
        message: str,
        reason: FailureReason | None = None,
    ) -> None:
        """Add an event (a phase already reached is not repeated) and wake the followers."""
        if launch.events and launch.phase.final:
            return
        if any(e.phase is phase for e in launch.events) and not phase.final:
            return
        async with launch.changed:
            launch.events.append(LaunchEvent(phase, message, datetime.now(UTC), reason))
            if phase.final:
                launch.finished_at = time.monotonic()
            launch.changed.notify_all()
        if launch.save is not None:
            async with launch.saving:
                try:
                    await launch.save()
                except OnyxiaError as exc:  # the launch goes on; other replicas lag behind
                    log.warning("saving the progress of %s: %s", launch.release, exc.detail)

    async def follow(self, launch: Launch) -> AsyncIterator[LaunchEvent]:
        """Every event of the launch, past then new, until it ends."""
        sent = 0
        while True:
            async with launch.changed:
                while len(launch.events) <= sent:
                    await launch.changed.wait()
                fresh = launch.events[sent:]
            for event in fresh:
                yield event
            sent += len(fresh)
            if fresh[-1].phase.final:
                return

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, launch in list(self._launches.items()):
            if launch.finished_at is not None and now - launch.finished_at > RETENTION_SECONDS:
                del self._launches[key]
