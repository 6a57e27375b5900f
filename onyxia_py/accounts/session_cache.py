"""Who recent session cookies belong to, kept in memory for a few seconds (issue #19).

A session lookup was a database round trip on every request. The cache keeps, per cookie hash,
the `Principal` its session row gives, for `auth.session_cache_seconds`:

- a session ended or changed on this replica (logout, refresh, refusal) is evicted at once;
  ended on another replica, it is served here until its entry is that old, no longer;
- an entry is never served at or past the moment its tokens need refreshing, nor past the
  session's absolute end: then the lookup goes to the database (and the refresh, with its lock);
- entries are bounded in number, the least recently used dropped first.

What is kept is the principal, not the row: the sealed provider tokens stay in the database.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from onyxia_py.accounts.models import Principal

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    usable_until: datetime  # wall clock: refresh margin before expiry, or the absolute end
    stored_at: float  # the cache's clock


class SessionCache:
    """Principals by session cookie hash, for `seconds` each (0: nothing is kept)."""

    def __init__(
        self,
        seconds: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._keys: dict[int, str] = {}  # session id: cookie hash
        self._evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str, now: datetime) -> Principal | None:
        """The principal cached for `key`, if it is still fresh and usable at `now`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.usable_until or self._clock() - entry.stored_at >= self.seconds:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.principal

    def marker(self) -> int:
        """Take before reading a session from the database, give to `put` with what was read."""
        return self._evictions

    def put(self, key: str, principal: Principal, usable_until: datetime, marker: int) -> None:
        """Keep `principal` for `key` until `usable_until` at the latest, unless a session was
        evicted since `marker` was taken: the row read may be one that has just ended."""
        if self.seconds <= 0 or marker != self._evictions or principal.session_id is None:
            return
        self._drop(key)
        self._entries[key] = _Entry(principal, usable_until, self._clock())
        self._keys[principal.session_id] = key
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def evict(self, session_id: int) -> None:
        """Forget session `session_id` at once (it ended or changed)."""
        self._evictions += 1
        key = self._keys.get(session_id)
        if key is not None:
            self._drop(key)

    @contextmanager
    def evicting(self, session_id: int) -> Iterator[None]:
        """Evict session `session_id` once the write in the block is done, or has failed:
        after it, so a lookup that read the old row meanwhile cannot cache it."""
        try:
            yield
        finally:
            self.evict(session_id)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry.principal.session_id is not None:
            self._keys.pop(entry.principal.session_id, None)
