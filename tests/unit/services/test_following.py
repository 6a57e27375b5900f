"""Following a launch from any replica: events saved on the record survive its round trip, and a
follower on another replica gets every step and an end, whatever way the launch ended (a fake
record source behind the `RecordSource` protocol: no cluster)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from onyxia_py.services import following, listing, objects
from onyxia_py.services.listing import ServiceSummary
from onyxia_py.services.models import (
    MAX_RECORDED_EVENTS,
    FailureReason,
    LaunchEvent,
    Phase,
    ServiceMeta,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
NS = "user-alice"


def event(phase: Phase, seconds: int, reason: FailureReason | None = None) -> LaunchEvent:
    return LaunchEvent(phase, phase.value, NOW + timedelta(seconds=seconds), reason)


META = ServiceMeta(
    release="jupyter-1",
    namespace=NS,
    catalog="ide",
    chart="jupyter-python",
    version="1.0.0",
    owner="alice",
    friendly_name="Notebook",
    share=False,
    created=NOW.isoformat(),
    events=(event(Phase.ACCEPTED, 0),),
)


def summary(
    meta: ServiceMeta, status: str = listing.STARTING, reason: str | None = None
) -> ServiceSummary:
    return ServiceSummary(meta, status, reason, (), None, {}, 0)


@dataclass
class Records:
    """What a replica's cache holds: the current listing line (or none) and the ended events."""

    line: ServiceSummary | None
    ended: tuple[LaunchEvent, ...] | None = None
    count: int = 0
    history: list[ServiceSummary | None] = field(default_factory=list)

    async def ensure(self, namespace: str) -> None:
        if self.history:  # each look moves the record on by one step
            self.line = self.history.pop(0)
            self.count += 1

    def summaries(self, namespace: str) -> list[ServiceSummary]:
        return [self.line] if self.line else []

    def changes(self, namespace: str) -> int:
        return self.count

    def ended_events(self, namespace: str, release: str) -> tuple[LaunchEvent, ...] | None:
        return self.ended


def follow(records: Records) -> list[LaunchEvent]:
    async def run() -> list[LaunchEvent]:
        async with asyncio.timeout(10):
            return [e async for e in following.recorded(records, NS, META.release)]

    return asyncio.run(run())


def test_recorded_events_survive_the_metadata_secret() -> None:
    events = (
        event(Phase.ACCEPTED, 0),
        event(Phase.INSTALLING, 1),
        event(Phase.FAILED, 5, FailureReason.IMAGE_PULL),
    )
    back = objects.read_meta(objects.meta_secret(replace(META, events=events)))
    assert back.events == events


def test_a_malformed_event_is_skipped_not_fatal() -> None:
    secret = objects.meta_secret(META)
    good = objects.read_meta(secret).events
    secret["data"]["launchEvents"] = objects._b64(
        '[{"phase": "nope"}, 3, ' + '{"phase": "installing", "at": "2026-12-02T12:00:01+00:00"}]'
    )
    assert [e.phase for e in objects.read_meta(secret).events] == [Phase.INSTALLING]
    secret["data"]["launchEvents"] = objects._b64("not json")
    assert objects.read_meta(secret).events == ()
    assert good == META.events


def test_only_the_last_events_are_kept() -> None:
    many = tuple(event(Phase.SCHEDULED, i) for i in range(MAX_RECORDED_EVENTS + 5))
    back = objects.read_meta(objects.meta_secret(replace(META, events=many)))
    assert back.events == many[-MAX_RECORDED_EVENTS:]


def test_a_follower_gets_every_step_then_the_end() -> None:
    steps = [
        replace(META, events=(*META.events, event(Phase.INSTALLING, 1))),
        replace(META, events=(*META.events, event(Phase.INSTALLING, 1), event(Phase.PULLING, 2))),
        replace(
            META,
            events=(
                *META.events,
                event(Phase.INSTALLING, 1),
                event(Phase.PULLING, 2),
                event(Phase.RUNNING, 3),
            ),
        ),
    ]
    records = Records(summary(META), history=[summary(m) for m in steps])
    got = follow(records)
    assert [e.phase for e in got] == [
        Phase.ACCEPTED,
        Phase.INSTALLING,
        Phase.PULLING,
        Phase.RUNNING,
    ]


def test_a_launch_whose_replica_died_ends_with_the_cluster_state() -> None:
    # Nobody writes `running` any more, but the service runs: the follower ends there.
    records = Records(summary(META), history=[summary(META, listing.RUNNING)])
    assert [e.phase for e in follow(records)] == [Phase.ACCEPTED, Phase.RUNNING]
    # Or the reconciler marked the record failed.
    failed = replace(META, failure="interrupted: its replica stopped")
    records = Records(summary(META), history=[summary(failed, listing.FAILED, failed.failure)])
    last = follow(records)[-1]
    assert (last.phase, last.message) == (Phase.FAILED, failed.failure)


def test_a_rolled_back_launch_ends_with_the_failure_its_deletion_carried() -> None:
    failed = event(Phase.FAILED, 4, FailureReason.IMAGE_PULL)
    records = Records(None, ended=(*META.events, failed))
    got = follow(records)
    assert got[-1] == failed


def test_a_record_deleted_without_an_end_still_ends() -> None:
    records = Records(None, ended=META.events)
    got = follow(records)
    assert [e.phase for e in got] == [Phase.ACCEPTED, Phase.FAILED]
    assert got[-1].message == "it was deleted"
