"""Reads and writes of users and audit events, as plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from onyxia_py.db.database import Database
from onyxia_py.db.models import AuditEvent, User, utcnow
from onyxia_py.errors import Conflict
from onyxia_py.logs import request_id_var


@dataclass(frozen=True)
class UserRecord:
    """A user as the rest of the platform sees it."""

    id: int
    issuer: str
    subject: str
    username: str
    email: str | None
    first_seen: datetime
    last_seen: datetime
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    roles_checked_at: datetime | None = None
    grant_sealed: str | None = field(default=None, repr=False)
    tokens_suspended_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as the rest of the platform sees it."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    request_id: str | None
    details: dict[str, Any]


class Users:
    """Users, keyed by (issuer, subject)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def seen(
        self,
        *,
        issuer: str,
        subject: str,
        username: str,
        email: str | None,
        groups: list[str] | None = None,
        roles: list[str] | None = None,
    ) -> UserRecord:
        """Record what the provider just confirmed (a login or a provider token): create the
        user or refresh its name, email, groups and roles. Conflict when another account (another
        issuer or subject) already has `username`: names are never shared or inherited."""
        async with self._db.session() as session:
            taken = await session.scalar(select(User).where(User.username == username))
            if taken is not None and (taken.issuer, taken.subject) != (issuer, subject):
                raise Conflict(
                    f"the username {username!r} belongs to another account: an administrator "
                    "must rename one of them at the identity provider"
                )
            user = await session.scalar(
                select(User).where(User.issuer == issuer, User.subject == subject)
            )
            now = utcnow()
            if user is None:
                user = User(issuer=issuer, subject=subject, first_seen=now)
                session.add(user)
            user.username, user.email, user.last_seen = username, email, now
            user.groups, user.roles = list(groups or []), list(roles or [])
            user.roles_checked_at, user.tokens_suspended_at = now, None
            try:
                await session.flush()
            except IntegrityError as exc:  # the same name claimed at the same moment elsewhere
                raise Conflict(f"the username {username!r} belongs to another account") from exc
            return _user(user)

    async def keep_grant(self, user_id: int, grant_sealed: str) -> None:
        """Keep the refresh token of a session that ends, for later role re-checks."""
        await self._set(user_id, grant_sealed=grant_sealed)

    async def suspend_tokens(self, user_id: int, at: datetime) -> None:
        """The provider no longer confirms this user: their API tokens stop until a login."""
        await self._set(user_id, tokens_suspended_at=at, grant_sealed=None)

    async def _set(self, user_id: int, **values: Any) -> None:
        async with self._db.session() as session:
            await session.execute(update(User).where(User.id == user_id).values(**values))

    async def get(self, user_id: int) -> UserRecord | None:
        """The user with id `user_id`."""
        async with self._db.session() as session:
            row = await session.get(User, user_id)
            return _user(row) if row else None


class AuditLog:
    """The append-only record of who did what."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        request_id: str | None = None,
    ) -> AuditRecord:
        """Append one event, tagged with the current request id (or with the time and request
        of when it happened, for an event delivered late)."""
        event = AuditEvent(
            at=at or utcnow(),
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            request_id=request_id or request_id_var.get(),
            details=details or {},
        )
        async with self._db.session() as session:
            session.add(event)
            await session.flush()
            return _audit(event)

    async def recent(
        self,
        *,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditRecord]:
        """The latest events first, optionally one actor's, actions starting with `action`,
        targets containing `target`, one outcome, and no older than `since`."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(AuditEvent.actor == actor)
        if action:
            query = query.where(AuditEvent.action.startswith(action, autoescape=True))
        if target:
            query = query.where(AuditEvent.target.contains(target, autoescape=True))
        if outcome:
            query = query.where(AuditEvent.outcome == outcome)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        async with self._db.session() as session:
            return [_audit(e) for e in await session.scalars(query)]


def _user(row: User) -> UserRecord:
    return UserRecord(
        row.id,
        row.issuer,
        row.subject,
        row.username,
        row.email,
        row.first_seen,
        row.last_seen,
        tuple(row.groups or ()),
        tuple(row.roles or ()),
        row.roles_checked_at,
        row.grant_sealed,
        row.tokens_suspended_at,
    )


def _audit(row: AuditEvent) -> AuditRecord:
    return AuditRecord(
        row.id,
        row.at,
        row.actor,
        row.action,
        row.target,
        row.outcome,
        row.request_id,
        dict(row.details),
    )
