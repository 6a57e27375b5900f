"""Tables of the platform database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store in UTC."""
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base of every table."""


class User(Base):
    """A person known through an identity provider: bound to (issuer, subject), never a name."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_users_issuer_subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    # Namespaces and buckets are named after the username: one account per username, ever.
    username: Mapped[str] = mapped_column(String(255), index=True, unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The groups and roles of the latest login: what an API token of this user may act with.
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # When the provider last confirmed those groups and roles (login, refresh or re-check).
    roles_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The refresh token of the user's last ended session (sealed): what re-checks use when the
    # user has no session left.
    grant_sealed: Mapped[str | None] = mapped_column(Text)
    # Set when the provider no longer confirms the user: their API tokens stop until a login.
    tokens_suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProjectOwner(Base):
    """Who a project namespace belongs to: one user (issuer, subject) or one group, for good."""

    __tablename__ = "project_owners"

    namespace: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "user" or "group"
    issuer: Mapped[str] = mapped_column(String(512))
    # The subject for a user, the exact group name (before any rewrite) for a group.
    owner: Mapped[str] = mapped_column(String(255))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One thing someone did, kept forever: rows are only ever inserted (triggers refuse more)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_actor", "actor"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128))
    target: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Session(Base):
    """A browser session: the cookie holds a random token, the table only its hash."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Provider tokens, sealed with the token encryption key (never stored in clear).
    access_token_sealed: Mapped[str | None] = mapped_column(Text)
    refresh_token_sealed: Mapped[str | None] = mapped_column(Text)
    claims: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ApiToken(Base):
    """A personal API token; only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CatalogRow(Base):
    """A catalogue an administrator made (the password sealed, never in clear)."""

    __tablename__ = "catalogs"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    password_sealed: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class CatalogRevision(Base):
    """The latest change of one catalogue (made, changed, removed or reloaded with a new
    index): replicas compare it with the one they last saw."""

    __tablename__ = "catalog_revisions"

    catalog_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    revision: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SavedLaunch(Base):
    """A launch a user kept to do again: chart, version and the values they changed."""

    __tablename__ = "saved_launches"
    __table_args__ = (Index("ix_saved_launches_owner", "user_id", "project"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    project: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(100))
    catalog: Mapped[str] = mapped_column(String(63))
    chart: Mapped[str] = mapped_column(String(253))
    version: Mapped[str | None] = mapped_column(String(64))
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
