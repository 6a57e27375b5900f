"""Browser sessions and personal API tokens, as plain frozen records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from onyxia_py.db.database import Database
from onyxia_py.db.models import ApiToken, Session


@dataclass(frozen=True)
class SessionRecord:
    """A stored session (tokens still sealed)."""

    id: int
    user_id: int
    csrf_token: str
    expires_at: datetime
    absolute_expires_at: datetime
    access_token_sealed: str | None
    refresh_token_sealed: str | None
    claims: dict[str, Any]


@dataclass(frozen=True)
class ApiTokenRecord:
    """A stored API token (its secret is never kept)."""

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class SessionStore:
    """Sessions, found by the hash of their cookie value."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        token_hash: str,
        user_id: int,
        csrf_token: str,
        expires_at: datetime,
        absolute_expires_at: datetime,
        access_token_sealed: str | None,
        refresh_token_sealed: str | None,
        claims: dict[str, Any],
    ) -> SessionRecord:
        """Store a new session."""
        row = Session(
            token_hash=token_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            expires_at=expires_at,
            absolute_expires_at=absolute_expires_at,
            access_token_sealed=access_token_sealed,
            refresh_token_sealed=refresh_token_sealed,
            claims=claims,
        )
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            return _session(row)

    async def find(self, token_hash: str) -> SessionRecord | None:
        """The session whose cookie hashes to `token_hash`."""
        async with self._db.session() as session:
            row = await session.scalar(select(Session).where(Session.token_hash == token_hash))
            return _session(row) if row else None

    async def get(self, session_id: int) -> SessionRecord | None:
        """The session with id `session_id`."""
        async with self._db.session() as session:
            row = await session.get(Session, session_id)
            return _session(row) if row else None

    async def newest_for_user(self, user_id: int, now: datetime) -> SessionRecord | None:
        """The user's most recent session still alive at `now` that holds provider tokens."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(Session)
                .where(
                    Session.user_id == user_id,
                    Session.absolute_expires_at > now,
                    Session.access_token_sealed.is_not(None),
                )
                .order_by(Session.id.desc())
                .limit(1)
            )
            return _session(row) if row else None

    async def refreshed(
        self,
        session_id: int,
        *,
        expires_at: datetime,
        access_token_sealed: str,
        refresh_token_sealed: str | None,
        claims: dict[str, Any],
    ) -> None:
        """Record the tokens of a refresh."""
        async with self._db.session() as session:
            await session.execute(
                update(Session)
                .where(Session.id == session_id)
                .values(
                    expires_at=expires_at,
                    access_token_sealed=access_token_sealed,
                    refresh_token_sealed=refresh_token_sealed,
                    claims=claims,
                )
            )

    async def delete(self, session_id: int) -> None:
        """End a session."""
        async with self._db.session() as session:
            await session.execute(delete(Session).where(Session.id == session_id))

    async def delete_expired(self, now: datetime) -> int:
        """Drop sessions past their absolute end; returns how many."""
        async with self._db.session() as session:
            result = await session.execute(delete(Session).where(Session.absolute_expires_at < now))
            return int(getattr(result, "rowcount", 0) or 0)


class ApiTokenStore:
    """Personal API tokens, found by the hash of their secret."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        user_id: int,
        name: str,
        prefix: str,
        token_hash: str,
        scopes: list[str],
        expires_at: datetime,
    ) -> ApiTokenRecord:
        """Store a new token."""
        row = ApiToken(
            user_id=user_id,
            name=name,
            prefix=prefix,
            token_hash=token_hash,
            scopes=scopes,
            expires_at=expires_at,
        )
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            return _token(row)

    async def find(self, token_hash: str) -> ApiTokenRecord | None:
        """The token whose secret hashes to `token_hash`, revoked or not."""
        async with self._db.session() as session:
            row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
            return _token(row) if row else None

    async def list_for(self, user_id: int) -> list[ApiTokenRecord]:
        """A user's tokens, newest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
            )
            return [_token(r) for r in rows]

    async def revoke(self, *, user_id: int, token_id: int, now: datetime) -> bool:
        """Revoke one of the user's tokens; False if the user has no such live token."""
        async with self._db.session() as session:
            result = await session.execute(
                update(ApiToken)
                .where(
                    ApiToken.id == token_id,
                    ApiToken.user_id == user_id,
                    ApiToken.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            return bool(getattr(result, "rowcount", 0))

    async def used(self, token_id: int, now: datetime) -> None:
        """Remember when a token was last used."""
        async with self._db.session() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )


def _session(row: Session) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user_id=row.user_id,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
        absolute_expires_at=row.absolute_expires_at,
        access_token_sealed=row.access_token_sealed,
        refresh_token_sealed=row.refresh_token_sealed,
        claims=dict(row.claims),
    )


def _token(row: ApiToken) -> ApiTokenRecord:
    return ApiTokenRecord(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
