"""One lock per key, dropped once nobody holds or waits for it."""

from __future__ import annotations

import asyncio

import pytest

from onyxia_py.keyed_locks import KeyedLocks


async def test_a_key_is_held_by_one_task_at_a_time_and_dropped_after() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []

    async def work(name: str) -> None:
        async with locks.hold("project"):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(work("a"), work("b"), work("c"))
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert len(locks) == 0  # memory does not grow with the keys ever seen


async def test_other_keys_do_not_wait_and_a_failure_releases_the_lock() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    async with locks.hold(1), locks.hold(2):  # another key: no wait
        assert len(locks) == 2
    with pytest.raises(RuntimeError):
        async with locks.hold(1):
            raise RuntimeError("boom")
    assert len(locks) == 0
    async with asyncio.timeout(1):
        async with locks.hold(1):  # free again
            pass


async def test_thousands_of_keys_leave_nothing_behind() -> None:
    locks: KeyedLocks[int] = KeyedLocks()

    async def once(key: int) -> None:
        async with locks.hold(key):
            await asyncio.sleep(0)

    await asyncio.gather(*(once(k) for k in range(5_000)))
    assert len(locks) == 0
