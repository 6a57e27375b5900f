"""Migrations and repositories on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from onyxia_py.db import (
    AuditLog,
    CatalogStore,
    Database,
    ProjectOwners,
    StoredCatalog,
    Users,
    current_revision,
    upgrade,
)
from onyxia_py.errors import Conflict
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
    assert await current_revision(db.url) == "0006"
    await upgrade(db.url)
    assert await current_revision(db.url) == "0006"


async def test_every_catalogue_change_gets_a_revision_other_replicas_can_tell(
    db: Database,
) -> None:
    here, there = CatalogStore(db), CatalogStore(db)  # two replicas on one database
    assert await here.revisions() == {}
    await here.save("extra", {"id": "extra", "name": "Extra"}, None, "alice")
    made = await there.revisions()
    assert list(made) == ["extra"]
    assert here.written_here("extra", made["extra"])
    assert not there.written_here("extra", made["extra"])
    assert await there.get("extra") == StoredCatalog(
        "extra", {"id": "extra", "name": "Extra"}, None
    )

    await there.touch(["extra", "ide"])  # the leader found new indexes
    touched = await here.revisions()
    assert set(touched) == {"extra", "ide"}
    assert touched["extra"] != made["extra"]
    assert there.written_here("ide", touched["ide"])

    # A poll that reads an older revision of ours (a made-then-changed catalogue, read between
    # the two) still knows it as ours: it must not apply the definition stored back then.
    await here.save("extra", {"id": "extra", "name": "Extra, changed"}, None, "alice")
    assert here.written_here("extra", made["extra"])
    assert here.written_here("extra", (await there.revisions())["extra"])

    assert await here.delete("extra")
    gone = await there.revisions()
    assert gone["extra"] not in (made["extra"], touched["extra"])  # removals stay visible
    assert await there.get("extra") is None


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


async def test_a_username_never_passes_to_another_account(db: Database) -> None:
    users = Users(db)
    first = await users.seen(issuer="https://sso", subject="s-1", username="carol", email=None)
    for issuer, subject in [("https://sso", "s-2"), ("https://other", "s-1")]:
        with pytest.raises(Conflict, match="'carol' belongs to another account"):
            await users.seen(issuer=issuer, subject=subject, username="carol", email=None)
    again = await users.seen(issuer="https://sso", subject="s-1", username="carol", email=None)
    assert again.id == first.id


async def test_migration_keeps_the_oldest_account_of_a_shared_username(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0004")
    engine = sqlalchemy.create_engine(url.replace("+aiosqlite", ""))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for subject in ("first", "second"):
            conn.execute(
                sqlalchemy.text(
                    "INSERT INTO users (issuer, subject, username, first_seen, last_seen, "
                    "groups, roles) VALUES ('https://sso', :s, 'dave', :t, :t, '[]', '[]')"
                ),
                {"s": subject, "t": now},
            )
    await upgrade(url)
    with engine.begin() as conn:
        rows = conn.execute(sqlalchemy.text("SELECT subject, username FROM users ORDER BY id"))
        assert [tuple(r) for r in rows] == [("first", "dave"), ("second", "dave#2")]
    engine.dispose()
    database = Database(DatabaseSettings(url=url))
    try:
        with pytest.raises(Conflict):
            await Users(database).seen(
                issuer="https://sso", subject="second", username="dave", email=None
            )
    finally:
        await database.close()


async def test_a_namespace_keeps_its_first_owner(db: Database) -> None:
    owners = ProjectOwners(db)
    first = await owners.claim("projet-teamb", kind="group", issuer="https://sso", owner="teamb")
    second = await owners.claim("projet-teamb", kind="group", issuer="https://sso", owner="TeamB")
    assert (first.owner, second.owner) == ("teamb", "teamb")
    assert set(await owners.owners(["projet-teamb", "projet-x"])) == {"projet-teamb"}


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


async def test_audit_filters(db: Database) -> None:
    audit = AuditLog(db)
    tag = secrets.token_hex(4)  # PostgreSQL is shared by the session: only our events count
    for actor, action, target, outcome in (
        ("alice", "service.launch", f"{tag}-alice/jupyter-1", "accepted"),
        ("alice", "service.delete", f"{tag}-alice/jupyter-1", "success"),
        ("bob", "service.launch", f"{tag}-bob/100%_sure", "failure"),
        ("bob", "catalog.refresh", f"{tag}-ide", "success"),
    ):
        await audit.record(actor=actor, action=action, target=target, outcome=outcome)

    async def shape(**filters: Any) -> list[tuple[str, str]]:
        found = await audit.recent(**filters)
        return [(e.actor, e.action) for e in found if e.target.startswith(tag)]

    assert await shape(action="service.", target=tag) == [
        ("bob", "service.launch"),
        ("alice", "service.delete"),
        ("alice", "service.launch"),
    ]
    assert await shape(target=f"{tag}-alice", outcome="success") == [("alice", "service.delete")]
    # LIKE wildcards in a filter are plain characters.
    assert await shape(target=f"{tag}-bob/100%_") == [("bob", "service.launch")]
    assert await shape(target="%_sure") == [("bob", "service.launch")]
    assert await shape(target=tag, since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert len(await shape(target=tag, since=datetime.now(UTC) - timedelta(hours=1))) == 4


async def test_ping(db: Database) -> None:
    await db.ping()
