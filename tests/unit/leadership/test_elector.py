"""The elector's rules with an in-memory Lease store behind its port: one leader, takeover after
death or release, jobs stopped when renewals fail or hang."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from onyxia_py.errors import Conflict, Unavailable
from onyxia_py.kube import LeaseRecord
from onyxia_py.leadership.core import Elector, Timing, Unelected

TIMING = Timing(lease_duration_seconds=1, renew_deadline_seconds=0.5, retry_period_seconds=0.1)


class FakeLeases:
    """Leases in memory, with the API server's resourceVersion check; can fail or hang."""

    namespace = "platform"

    def __init__(self) -> None:
        self.records: dict[str, LeaseRecord] = {}
        self.failing = False
        self.hanging = False
        self._version = 0

    async def _call(self) -> None:
        if self.hanging:
            await asyncio.Event().wait()
        if self.failing:
            raise Unavailable("cannot reach Kubernetes: ConnectionRefusedError")

    def _store(self, name: str, record: LeaseRecord) -> LeaseRecord:
        self._version += 1
        stored = dataclasses.replace(record, resource_version=str(self._version))
        self.records[name] = stored
        return stored

    async def get(self, name: str) -> LeaseRecord | None:
        await self._call()
        return self.records.get(name)

    async def create(self, name: str, record: LeaseRecord) -> LeaseRecord:
        await self._call()
        if name in self.records:
            raise Conflict("leases.coordination.k8s.io already exists")
        return self._store(name, record)

    async def update(self, name: str, record: LeaseRecord) -> LeaseRecord:
        await self._call()
        if self.records[name].resource_version != record.resource_version:
            raise Conflict("the object has been modified")
        return self._store(name, record)


class Job:
    """Counts how often it is started and stopped."""

    def __init__(self, fail: bool = False) -> None:
        self.running = False
        self.starts = 0
        self.fail = fail

    async def start(self) -> None:
        if self.fail:
            raise RuntimeError("broken job")
        self.starts += 1
        self.running = True

    async def stop(self) -> None:
        self.running = False


async def eventually(check: Callable[[], bool], seconds: float) -> float:
    """Wait until `check()` holds; the time it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@asynccontextmanager
async def electors(leases: FakeLeases, count: int) -> AsyncIterator[list[tuple[Elector, Job]]]:
    pairs = []
    for n in range(count):
        job = Job()
        pairs.append((Elector(leases, "lease", f"replica-{n}", [job], TIMING), job))
    for elector, _ in pairs:
        await elector.start()
    try:
        yield pairs
    finally:
        for elector, _ in pairs:
            await elector.stop()


def running(pairs: list[tuple[Elector, Job]]) -> list[Job]:
    return [job for _, job in pairs if job.running]


@pytest.fixture
def leases() -> FakeLeases:
    return FakeLeases()


async def test_exactly_one_of_three_runs_the_jobs(leases: FakeLeases) -> None:
    async with electors(leases, 3) as pairs:
        await eventually(lambda: len(running(pairs)) == 1, 2)
        await asyncio.sleep(1.5)  # longer than the lease: renewals keep it
        assert len(running(pairs)) == 1
        leader = next(e for e, job in pairs if job.running)
        assert leader.leading
        assert leases.records["lease"].holder == leader.identity
        assert all(e.holder == leader.identity for e, _ in pairs)


async def test_a_dead_leader_is_replaced_after_the_lease_expires(leases: FakeLeases) -> None:
    async with electors(leases, 2) as pairs:
        await eventually(lambda: len(running(pairs)) == 1, 2)
        dead = next(e for e, job in pairs if job.running)
        await dead.stop(release=False)
        took = await eventually(lambda: len(running(pairs)) == 1, 3)
        # Not before the lease expired, within its duration plus two retry periods.
        assert 0.8 <= took <= 1 + 2 * 0.12 + 0.3
        assert leases.records["lease"].transitions == 1


async def test_a_released_lease_is_taken_at_once(leases: FakeLeases) -> None:
    async with electors(leases, 2) as pairs:
        await eventually(lambda: len(running(pairs)) == 1, 2)
        await next(e for e, job in pairs if job.running).stop()
        assert leases.records["lease"].holder in ("", *(e.identity for e, _ in pairs))
        took = await eventually(lambda: len(running(pairs)) == 1, 2)
        assert took < 0.5


@pytest.mark.parametrize("outage", ["failing", "hanging"])
async def test_the_leader_stops_its_jobs_when_it_cannot_renew(
    leases: FakeLeases, outage: str
) -> None:
    async with electors(leases, 1) as pairs:
        ((elector, job),) = pairs
        await eventually(lambda: job.running, 1)
        setattr(leases, outage, True)
        took = await eventually(lambda: not job.running, 2)
        assert took <= 0.5 + 0.15  # the renew deadline, however long a call hangs
        assert not elector.leading
        setattr(leases, outage, False)
        await eventually(lambda: job.running, 2)  # leads again once the Lease answers
        assert job.starts == 2


async def test_no_store_means_the_jobs_wait(leases: FakeLeases) -> None:
    leases.failing = True
    async with electors(leases, 1) as pairs:
        await asyncio.sleep(0.5)
        assert running(pairs) == []
        leases.failing = False
        await eventually(lambda: len(running(pairs)) == 1, 1)


async def test_a_job_that_fails_to_start_does_not_stop_the_others(leases: FakeLeases) -> None:
    broken, good = Job(fail=True), Job()
    elector = Elector(leases, "lease", "solo", [broken, good], TIMING)
    await elector.start()
    try:
        await eventually(lambda: good.running, 1)
    finally:
        await elector.stop()
    assert not good.running
    assert leases.records["lease"].holder == ""


async def test_unelected_runs_the_jobs_from_start_to_stop() -> None:
    job = Job()
    alone = Unelected([job])
    await alone.start()
    assert job.running
    assert alone.leading
    await alone.stop()
    assert not job.running
    assert not alone.leading
