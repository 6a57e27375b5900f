"""Migrations and repositories on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy

from onyxia_py.db import AuditLog, Database, Users, current_revision, upgrade
from onyxia_py.settings import DatabaseSettings


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'onyxia.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    await upgrade(url)
    database = Database(DatabaseSettings(url=url))
    yield database
    await database.close()


async def test_migrations_reach_head_and_are_idempotent(db: Database) -> None:
    assert await current_revision(db.url) == "0004"
    await upgrade(db.url)
    assert await current_revision(db.url) == "0004"


async def test_users_are_upserted_by_issuer_and_subject(db: Database) -> None:
    users = Users(db)
    first = await users.seen(issuer="https://sso", subject="s-1", username="alice", email=None)
    again = await users.seen(
        issuer="https://sso", subject="s-1", username="alice2", email="a@example.org"
    )
    other = await users.seen(issuer="https://other", subject="s-1", username="alice", email=None)
    assert again.id == first.id
    assert again.username == "alice2"
    assert again.first_seen == first.first_seen
    assert again.last_seen >= first.last_seen
    assert other.id != first.id


async def test_audit_log_is_append_only(db: Database) -> None:
    audit = AuditLog(db)
    event = await audit.record(
        actor="alice",
        action="service.launch",
        target="user-alice/jupyter-1",
        outcome="success",
        details={"chart": "jupyter-python"},
    )
    recent = await audit.recent(actor="alice")
    assert [e.id for e in recent] == [event.id]
    assert recent[0].details == {"chart": "jupyter-python"}
    for statement in ("UPDATE audit_events SET outcome = 'forged'", "DELETE FROM audit_events"):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            async with db.session() as session:
                await session.execute(sqlalchemy.text(statement))
    assert (await audit.recent(actor="alice"))[0].outcome == "success"


async def test_ping(db: Database) -> None:
    await db.ping()
