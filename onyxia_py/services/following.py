"""Following a launch from any replica: its steps as saved on the service's record, which every
replica's watch cache holds, completed by what the cluster says.

The replica that accepted the launch streams from memory (`tracker.LaunchTracker.follow`); the
others use `recorded`. Both give the same phases. A record whose launch never wrote its end (the
replica that ran it died) still ends: the record's failure, or the service's state in the
listing (running, failed), closes the stream; a record deleted meanwhile ends it with the last
events its deletion carried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Protocol

from onyxia_py.services import listing
from onyxia_py.services.listing import ServiceSummary
from onyxia_py.services.models import FailureReason, LaunchEvent, Phase
from onyxia_py.services.tracker import Launch

POLL_SECONDS = 0.25


class RecordSource(Protocol):
    """The service records of the projects this replica follows (the watch cache)."""

    async def ensure(self, namespace: str) -> None: ...

    def summaries(self, namespace: str) -> list[ServiceSummary]: ...

    def changes(self, namespace: str) -> int: ...

    def ended_events(self, namespace: str, release: str) -> tuple[LaunchEvent, ...] | None: ...


def find(source: RecordSource, namespace: str, release: str) -> ServiceSummary | None:
    """The listing line of `release`, if its record exists."""
    return next((s for s in source.summaries(namespace) if s.meta.release == release), None)


def steps(
    summary: ServiceSummary | None, ended: tuple[LaunchEvent, ...] | None
) -> list[LaunchEvent]:
    """The launch's events as far as the cluster tells, with a final one once it has ended."""
    if summary is None:
        events = list(ended or ())
        if not events or not events[-1].phase.final:
            events.append(_event(Phase.FAILED, "it was deleted", FailureReason.INSTALL))
        return events
    events = list(summary.meta.events)
    if events and events[-1].phase.final:
        return events
    if summary.meta.failure:
        events.append(_event(Phase.FAILED, summary.meta.failure, FailureReason.INSTALL))
    elif summary.status == listing.RUNNING:
        events.append(_event(Phase.RUNNING, "running"))
    elif summary.status == listing.FAILED:
        events.append(_event(Phase.FAILED, summary.reason or "failed", FailureReason.INSTALL))
    return events


async def recorded(
    source: RecordSource, namespace: str, release: str
) -> AsyncIterator[LaunchEvent]:
    """Every event of the launch, past then new, until it ends (see the module's docstring)."""
    sent: set[tuple[Phase, datetime]] = set()
    seen = -2
    while True:
        await source.ensure(namespace)
        now = source.changes(namespace)
        if now != seen:
            seen = now
            summary = find(source, namespace, release)
            ended = source.ended_events(namespace, release) if summary is None else None
            for event in steps(summary, ended):
                if event.phase.final:
                    yield event
                    return
                if (event.phase, event.at) not in sent:
                    sent.add((event.phase, event.at))
                    yield event
        await asyncio.sleep(POLL_SECONDS)


def _event(phase: Phase, message: str, reason: FailureReason | None = None) -> LaunchEvent:
    return LaunchEvent(phase, message, datetime.now(UTC), reason)


def live_status(summary: ServiceSummary, launch: Launch | None) -> tuple[str, str | None]:
    """A listing line's status and reason, completed by the launch this replica follows
    (`launch`), or else by the step another replica saved on the record."""
    meta = summary.meta
    status, reason = summary.status, summary.reason
    if launch is not None and not launch.phase.final:
        return listing.STARTING, launch.phase.value
    if launch is not None and launch.failure is not None and not meta.failure:
        # The record's own reason, once it has one, is newer (e.g. the reconciler finished
        # a cleanup this launch could not): every replica shows that one.
        return listing.FAILED, launch.failure
    if launch is None and status == listing.STARTING and meta.events:
        # Launched by another replica: the step it saved on the record.
        last = meta.events[-1]
        if not last.phase.final:
            reason = last.phase.value
    return status, reason
