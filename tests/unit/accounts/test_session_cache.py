"""The session cache on its own: fresh entries, aged ones, usable-until, eviction, its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.accounts.session_cache import SessionCache

NOW = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(session_id: int) -> Principal:
    identity = Identity("https://sso.example.org", f"sub-{session_id}", "alice", None, (), ())
    return Principal(
        1,
        identity,
        is_admin=False,
        scopes=frozenset({Scope.READ}),
        method=AuthMethod.SESSION,
        session_id=session_id,
        csrf_token="csrf",
    )


def test_an_entry_is_served_until_it_is_as_old_as_the_setting() -> None:
    clock = Clock()
    cache = SessionCache(5.0, clock=clock)
    cache.put("k", principal(1), LATER, cache.marker())
    clock.now += 4.5
    assert cache.get("k", NOW) == principal(1)
    clock.now += 0.5
    assert cache.get("k", NOW) is None
    assert len(cache) == 0


def test_serving_an_entry_does_not_make_it_younger() -> None:
    clock = Clock()
    cache = SessionCache(5.0, clock=clock)
    cache.put("k", principal(1), LATER, cache.marker())
    for _ in range(4):
        clock.now += 1.0
        assert cache.get("k", NOW) is not None
    clock.now += 1.0
    assert cache.get("k", NOW) is None


def test_never_served_at_or_past_its_usable_until() -> None:
    cache = SessionCache(60.0, clock=Clock())
    cache.put("k", principal(1), NOW, cache.marker())
    assert cache.get("k", NOW - timedelta(microseconds=1)) is not None
    assert cache.get("k", NOW) is None
    assert cache.get("k", NOW - timedelta(seconds=1)) is None  # dropped, not kept for later


def test_zero_seconds_keeps_nothing() -> None:
    cache = SessionCache(0.0, clock=Clock())
    cache.put("k", principal(1), LATER, cache.marker())
    assert cache.get("k", NOW) is None
    assert len(cache) == 0


def test_eviction_by_session_id() -> None:
    cache = SessionCache(5.0, clock=Clock())
    cache.put("a", principal(1), LATER, cache.marker())
    cache.put("b", principal(2), LATER, cache.marker())
    cache.evict(1)
    cache.evict(99)  # unknown: nothing to drop
    assert cache.get("a", NOW) is None
    assert cache.get("b", NOW) == principal(2)


def test_a_row_read_before_an_eviction_is_not_cached() -> None:
    """A lookup reads the row, a logout on this replica ends the session while the lookup is
    still waiting for the database: what it read must not be kept."""
    cache = SessionCache(5.0, clock=Clock())
    marker = cache.marker()
    cache.evict(1)
    cache.put("k", principal(1), LATER, marker)
    assert cache.get("k", NOW) is None
    cache.put("k", principal(1), LATER, cache.marker())
    assert cache.get("k", NOW) is not None


def test_evicting_evicts_after_the_write_even_when_it_fails() -> None:
    cache = SessionCache(5.0, clock=Clock())
    cache.put("k", principal(1), LATER, cache.marker())
    try:
        with cache.evicting(1):
            assert cache.get("k", NOW) is not None  # still there while the write runs
            raise RuntimeError("the database went away")
    except RuntimeError:
        pass
    assert cache.get("k", NOW) is None


def test_bounded_the_least_recently_used_goes_first() -> None:
    cache = SessionCache(5.0, max_entries=3, clock=Clock())
    for n in range(3):
        cache.put(f"k{n}", principal(n), LATER, cache.marker())
    assert cache.get("k0", NOW) is not None  # k1 is now the least recently used
    cache.put("k3", principal(3), LATER, cache.marker())
    assert len(cache) == 3
    assert cache.get("k1", NOW) is None
    assert [cache.get(k, NOW) is not None for k in ("k0", "k2", "k3")] == [True, True, True]
    cache.evict(1)  # its id index went with it: nothing else is dropped
    assert len(cache) == 3


def test_many_users_do_not_grow_it_past_its_bound() -> None:
    cache = SessionCache(5.0, max_entries=100, clock=Clock())
    for n in range(1000):
        cache.put(f"k{n}", principal(n), LATER, cache.marker())
    assert len(cache) == 100
    assert cache.get("k999", NOW) is not None
    assert cache.get("k0", NOW) is None
