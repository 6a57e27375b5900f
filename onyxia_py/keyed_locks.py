"""One asyncio lock per key, kept only while a task holds it or waits for it.

Maps of locks keyed by user, project or release otherwise grow with every key ever seen
(issue #19: memory must not grow with the number of projects or users).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """Locks by key; the last task to leave a key's lock drops it."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        """Hold `key`'s lock (waiting for it), then drop it when nobody else needs it."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users > 1:
                self._locks[key] = (lock, users - 1)
            else:
                del self._locks[key]

    def __len__(self) -> int:
        """How many keys have a lock now (held or waited for)."""
        return len(self._locks)
