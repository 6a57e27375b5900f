"""Release locks across replicas, with in-memory Leases behind their port: one Helm action per
release in the whole installation, an uninstall stops an install wherever it runs, a dead
holder's lock is taken over, nothing stays behind."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from onyxia_py.errors import Conflict, Unavailable
from onyxia_py.helm import DELETED, Cancellation, ProcessLocks
from onyxia_py.kube import LeaseRecord
from onyxia_py.leadership.locks import OPERATION, LeaseLocks, LockTiming, lease_name
from tests.unit.leadership.test_elector import FakeLeases

FAST = LockTiming(duration_seconds=1, renew_seconds=0.05, poll_seconds=0.02, max_wait_seconds=5)


class DeletableLeases(FakeLeases):
    """FakeLeases that can be deleted, with the API server's precondition check."""

    async def delete(self, name: str, resource_version: str = "") -> None:
        await self._call()
        current = self.records.get(name)
        if current is None:
            return
        if resource_version and current.resource_version != resource_version:
            raise Conflict("precondition failed")
        del self.records[name]


async def test_replicas_take_turns_on_one_release_and_leave_no_lease() -> None:
    leases = DeletableLeases()
    a, b = LeaseLocks(leases, "a", FAST), LeaseLocks(leases, "b", FAST)
    order: list[str] = []

    async def act(locks: LeaseLocks, who: str, operation: str) -> None:
        async with locks.hold("projet-x", "jupyter-1", operation):
            order.append(f"{who} in")
            await asyncio.sleep(0.2)
            order.append(f"{who} out")

    first = asyncio.create_task(act(a, "a", "upgrade"))
    await asyncio.sleep(0.05)
    await asyncio.gather(first, act(b, "b", "upgrade"))
    assert order == ["a in", "a out", "b in", "b out"]
    assert leases.records == {}  # released: deleted, not left to expire


async def test_other_releases_do_not_wait() -> None:
    leases = DeletableLeases()
    a, b = LeaseLocks(leases, "a", FAST), LeaseLocks(leases, "b", FAST)
    async with a.hold("projet-x", "jupyter-1", "install"):
        async with asyncio.timeout(1):
            async with b.hold("projet-x", "jupyter-2", "install"):
                assert len(leases.records) == 2
    assert lease_name("projet-x", "jupyter-1") != lease_name("projet-x", "jupyter-2")


async def test_an_uninstall_on_another_replica_stops_the_install() -> None:
    leases = DeletableLeases()
    a, b = LeaseLocks(leases, "a", FAST), LeaseLocks(leases, "b", FAST)
    stop = Cancellation()
    stopped = asyncio.Event()
    stop.on_cancel(stopped.set)

    async def install() -> None:
        async with a.hold("projet-x", "jupyter-1", "install", stop):
            assert leases.records[lease_name("projet-x", "jupyter-1")].annotations[OPERATION] == (
                "install"
            )
            await stopped.wait()  # Helm returns once its context is cancelled

    installing = asyncio.create_task(install())
    await asyncio.sleep(0.05)
    async with asyncio.timeout(2):  # not the whole install: it never ends by itself
        async with b.hold("projet-x", "jupyter-1", "uninstall"):
            assert installing.done()
    assert stop.reason == DELETED
    await installing


async def test_an_upgrade_waits_and_never_stops_an_install() -> None:
    leases = DeletableLeases()
    a, b = LeaseLocks(leases, "a", FAST), LeaseLocks(leases, "b", FAST)
    stop = Cancellation()

    async def install() -> None:
        async with a.hold("projet-x", "jupyter-1", "install", stop):
            await asyncio.sleep(0.3)

    installing = asyncio.create_task(install())
    await asyncio.sleep(0.05)
    async with b.hold("projet-x", "jupyter-1", "upgrade"):
        assert installing.done()
    assert not stop.cancelled


async def test_the_lock_of_a_replica_that_died_is_taken_over() -> None:
    leases = DeletableLeases()
    name = lease_name("projet-x", "jupyter-1")
    await leases.create(name, LeaseRecord(holder="dead", duration_seconds=1))
    b = LeaseLocks(leases, "b", FAST)
    started = asyncio.get_running_loop().time()
    async with b.hold("projet-x", "jupyter-1", "uninstall"):
        waited = asyncio.get_running_loop().time() - started
        assert leases.records[name].holder == "b"
    # Not before the Lease went unrenewed for its whole duration, not much after.
    assert 1.0 <= waited < 2.0


async def test_a_waiter_gives_up_with_a_clear_error() -> None:
    leases = DeletableLeases()
    a = LeaseLocks(leases, "a", FAST)
    b = LeaseLocks(leases, "b", dataclasses.replace(FAST, max_wait_seconds=0.3))
    async with a.hold("projet-x", "jupyter-1", "upgrade"):
        with pytest.raises(Unavailable, match="busy with another operation"):
            async with b.hold("projet-x", "jupyter-1", "upgrade"):
                pytest.fail("two holders at once")


async def test_the_holder_renews_while_it_works() -> None:
    leases = DeletableLeases()
    a = LeaseLocks(leases, "a", FAST)
    name = lease_name("projet-x", "jupyter-1")
    async with a.hold("projet-x", "jupyter-1", "install"):
        first = leases.records[name].resource_version
        await asyncio.sleep(0.2)
        assert leases.records[name].resource_version != first
        assert leases.records[name].holder == "a"


async def test_a_holder_that_cannot_reach_the_api_server_still_releases_locally() -> None:
    leases = DeletableLeases()
    a = LeaseLocks(leases, "a", FAST)
    async with a.hold("projet-x", "jupyter-1", "upgrade"):
        leases.failing = True
        await asyncio.sleep(0.1)
    leases.failing = False
    # The Lease stays until it expires; this process goes on with its other work.
    async with asyncio.timeout(3):
        async with a.hold("projet-x", "jupyter-1", "upgrade"):
            pass


async def test_process_locks_serialise_and_an_uninstall_stops_an_install() -> None:
    locks = ProcessLocks()
    stop = Cancellation()
    stopped = asyncio.Event()
    stop.on_cancel(stopped.set)

    async def install() -> None:
        async with locks.hold("projet-x", "jupyter-1", "install", stop):
            await stopped.wait()

    installing = asyncio.create_task(install())
    await asyncio.sleep(0)
    async with asyncio.timeout(1):
        async with locks.hold("projet-x", "jupyter-1", "uninstall"):
            assert installing.done()
    assert stop.reason == DELETED
    assert len(locks) == 0  # no lock kept for a release nobody works on


async def test_a_renewal_landing_during_the_release_does_not_leave_the_lease() -> None:
    """A renewal cancelled at release time may still be written (its request was sent) between
    the release's read and its delete: the release reads again and deletes."""

    class LateRenewal(DeletableLeases):
        bumped = False

        async def delete(self, name: str, resource_version: str = "") -> None:
            if not self.bumped:  # the renewal lands first
                self.bumped = True
                current = self.records[name]
                await self.update(name, dataclasses.replace(current))
            await super().delete(name, resource_version)

    leases = LateRenewal()
    a = LeaseLocks(leases, "a", FAST)
    async with a.hold("projet-x", "jupyter-1", "install"):
        pass
    assert leases.bumped
    assert leases.records == {}  # deleted, not left to expire
