"""Launch progress kept in memory and streamed to whoever follows it.

Only the replica that accepted a launch tracks it (a follower on another replica reads the
service's state from Kubernetes instead); finished launches are forgotten after an hour.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onyxia_py.services.models import FailureReason, LaunchEvent, Phase

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

    def start(self, namespace: str, release: str, owner: str) -> Launch:
        """Track a new launch."""
        self._forget_old()
        launch = Launch(release, namespace, owner)
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
