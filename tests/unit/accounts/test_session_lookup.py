"""Session cookies through `Accounts` with the cache in front of a real SQLite database: a
fresh entry costs no query, and whatever ends or changes a session here evicts it at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from onyxia_py.accounts import core
from onyxia_py.accounts.core import REFRESH_MARGIN, Accounts
from onyxia_py.accounts.session_cache import SessionCache
from onyxia_py.auth import Cipher, TokenSet, derive_key, random_token, token_hash
from onyxia_py.db import ApiTokenStore, AuditLog, SessionRecord, SessionStore, Users
from onyxia_py.db.database import Database
from onyxia_py.db.migrate import upgrade
from onyxia_py.db.models import User
from onyxia_py.errors import Unauthenticated
from onyxia_py.settings import AuthSettings, DatabaseSettings

ISSUER = "https://sso.example.org/realms/lab"


class Clock:
    """The cache's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingSessions(SessionStore):
    """The real store, counting the lookups by cookie that reach the database."""

    finds = 0

    async def find(self, token_hash: str) -> SessionRecord | None:
        self.finds += 1
        return await super().find(token_hash)


@dataclass
class FakeProvider:
    """An OpenID Provider that refreshes with `roles`, or refuses when `refusing`."""

    roles: list[str] = field(default_factory=list)
    refusing: bool = False
    refreshes: int = 0

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        raise AssertionError("no browser login here")

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        raise AssertionError("no browser login here")

    async def refresh(self, refresh_token: str) -> TokenSet:
        self.refreshes += 1
        if self.refusing:
            raise Unauthenticated("refresh token revoked")
        expires = datetime.now(UTC) + timedelta(hours=1)
        return TokenSet("access-2", expires.timestamp(), "refresh-2", None, "id-2")

    async def verify_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        return {
            "iss": ISSUER,
            "sub": "sub-alice",
            "preferred_username": "alice",
            "roles": self.roles,
        }

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        raise AssertionError("no bearer JWT here")

    async def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        return None


@dataclass
class World:
    accounts: Accounts
    sessions: CountingSessions
    users: Users
    provider: FakeProvider
    clock: Clock
    cipher: Cipher
    db: Database

    async def session(self, *, expires_in: timedelta = timedelta(hours=1)) -> str:
        """A new session of alice whose provider tokens expire in `expires_in`; its cookie."""
        user = await self.users.seen(
            issuer=ISSUER, subject="sub-alice", username="alice", email=None, groups=[], roles=[]
        )
        cookie, now = random_token(), datetime.now(UTC)
        await self.sessions.create(
            token_hash=token_hash(cookie),
            user_id=user.id,
            csrf_token=random_token(),
            expires_at=now + expires_in,
            absolute_expires_at=now + timedelta(hours=12),
            access_token_sealed=self.cipher.encrypt("access-1", "provider-token"),
            refresh_token_sealed=self.cipher.encrypt("refresh-1", "provider-token"),
            claims={
                "issuer": ISSUER,
                "subject": "sub-alice",
                "username": "alice",
                "email": None,
                "groups": [],
                "roles": [],
            },
        )
        return cookie


async def world_at(tmp_path: Path, seconds: float) -> AsyncIterator[World]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'onyxia.db'}"
    await upgrade(url)
    db = Database(DatabaseSettings(url=url))
    settings = AuthSettings(session_cache_seconds=seconds)
    cipher = Cipher([derive_key("test secret", "tokens")])
    sessions, users, provider, clock = CountingSessions(db), Users(db), FakeProvider(), Clock()
    accounts = Accounts(
        settings,
        public_url="https://onyxia.example.org",
        provider=provider,
        cipher=cipher,
        users=users,
        sessions=sessions,
        tokens=ApiTokenStore(db),
        audit=AuditLog(db),
        session_cache=SessionCache(settings.session_cache_seconds, clock=clock),
    )
    yield World(accounts, sessions, users, provider, clock, cipher, db)
    await db.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async for w in world_at(tmp_path, 5.0):
        yield w


@pytest.fixture
async def uncached(tmp_path: Path) -> AsyncIterator[World]:
    async for w in world_at(tmp_path, 0.0):
        yield w


async def test_a_fresh_entry_costs_no_query(world: World) -> None:
    cookie = await world.session()
    first = await world.accounts.session_principal(cookie)
    assert first is not None
    assert first.username == "alice"
    for _ in range(10):
        assert await world.accounts.session_principal(cookie) == first
    assert world.sessions.finds == 1


async def test_an_aged_entry_is_read_again(world: World) -> None:
    cookie = await world.session()
    await world.accounts.session_principal(cookie)
    world.clock.now += 4.5
    await world.accounts.session_principal(cookie)
    assert world.sessions.finds == 1
    world.clock.now += 0.5
    await world.accounts.session_principal(cookie)
    assert world.sessions.finds == 2


async def test_unknown_cookies_are_not_cached(world: World) -> None:
    assert await world.accounts.session_principal("no-such-cookie") is None
    assert await world.accounts.session_principal("no-such-cookie") is None
    assert world.sessions.finds == 2


async def test_zero_seconds_asks_the_database_every_time(uncached: World) -> None:
    cookie = await uncached.session()
    for _ in range(3):
        assert await uncached.accounts.session_principal(cookie) is not None
    assert uncached.sessions.finds == 3


async def test_logout_ends_the_cached_session_at_once(world: World) -> None:
    cookie = await world.session()
    principal = await world.accounts.session_principal(cookie)
    assert principal is not None
    await world.accounts.logout(principal)
    assert await world.accounts.session_principal(cookie) is None
    assert world.sessions.finds == 2


async def test_tokens_near_expiry_go_to_the_database_and_the_provider(world: World) -> None:
    """Inside the refresh margin nothing is cached: the refresh runs (with its lock), and the
    next request reads the refreshed row, which is cached from then on."""
    cookie = await world.session(expires_in=timedelta(seconds=20))
    assert await world.accounts.session_principal(cookie) is not None
    assert (world.provider.refreshes, world.sessions.finds) == (1, 3)  # lookup, reload, reload
    await world.accounts.session_principal(cookie)
    await world.accounts.session_principal(cookie)
    assert (world.provider.refreshes, world.sessions.finds) == (1, 4)


async def test_a_cached_entry_ends_where_the_refresh_margin_starts(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cached 2 s before the refresh margin starts, an entry is served for 2 s, not 5."""
    cookie = await world.session(expires_in=REFRESH_MARGIN + timedelta(seconds=2))
    assert await world.accounts.session_principal(cookie) is not None
    assert world.provider.refreshes == 0
    await world.accounts.session_principal(cookie)
    assert world.sessions.finds == 1
    later = datetime.now(UTC) + timedelta(seconds=2.5)
    monkeypatch.setattr(core, "_now", lambda: later)  # 2.5 s of wall clock, 0 of the cache's
    assert await world.accounts.session_principal(cookie) is not None
    assert world.provider.refreshes == 1


async def test_never_past_the_absolute_end(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = await world.session()
    assert await world.accounts.session_principal(cookie) is not None
    ended = datetime.now(UTC) + timedelta(hours=12, seconds=1)
    monkeypatch.setattr(core, "_now", lambda: ended)
    assert await world.accounts.session_principal(cookie) is None
    monkeypatch.undo()
    assert await world.accounts.session_principal(cookie) is None  # the row is gone too


async def test_a_role_recheck_refused_ends_the_cached_session(world: World) -> None:
    cookie = await world.session()
    principal = await world.accounts.session_principal(cookie)
    assert principal is not None
    token = await world.accounts.create_token(
        principal, name="ci", scopes=["read", "launch"], days=1
    )
    await _roles_stale(world)
    world.provider.refusing = True
    with pytest.raises(Unauthenticated):
        await world.accounts.bearer_principal(token.token)
    assert await world.accounts.session_principal(cookie) is None


async def test_a_refresh_elsewhere_in_accounts_shows_its_roles_at_once(world: World) -> None:
    cookie = await world.session()
    principal = await world.accounts.session_principal(cookie)
    assert principal is not None
    assert not principal.is_admin
    token = await world.accounts.create_token(
        principal, name="ci", scopes=["read", "launch"], days=1
    )
    await _roles_stale(world)
    world.provider.roles = ["admin"]
    await world.accounts.bearer_principal(token.token)
    assert world.provider.refreshes == 1
    again = await world.accounts.session_principal(cookie)
    assert again is not None
    assert again.is_admin


async def _roles_stale(world: World) -> None:
    async with world.db.session() as session:
        await session.execute(
            update(User).values(roles_checked_at=datetime.now(UTC) - timedelta(days=1))
        )
