"""The database connection: an async engine and its sessions, each bounded in time.

Whatever the database does (refuses connections, is frozen, is shutting down), a session ends
within `operation_timeout_seconds` and its connection-level failures become `Unavailable` (a
503 with Retry-After); constraint violations and other errors pass through unchanged. Pooled
connections are pinged before use, so a restarted server is used again without a restart here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from onyxia_py.db.errors import unavailable_reason
from onyxia_py.errors import Unavailable
from onyxia_py.settings import DatabaseSettings

log = logging.getLogger(__name__)


class Database:
    """An async engine plus a session factory, built from settings."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.url = settings.url.get_secret_value()
        self.settings = settings
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        options: dict[str, object] = {"echo": settings.echo, "pool_pre_ping": True}
        if self.is_sqlite:
            # sqlite3's timeout is its busy timeout: how long a statement waits for a lock.
            options["connect_args"] = {"timeout": settings.statement_timeout_seconds}
        else:
            statement = settings.statement_timeout_seconds
            options["pool_size"] = settings.pool_size
            options["pool_timeout"] = settings.pool_timeout_seconds
            options["connect_args"] = {
                "timeout": settings.connect_timeout_seconds,
                "command_timeout": statement,
                # The server gives up too, so an abandoned statement holds no locks.
                "server_settings": {"statement_timeout": str(max(1, round(statement * 1000)))},
            }
        self.engine = create_async_engine(self.url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine, "invalidate", _drop_if_unanswered)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success and rolled back on error;
        Unavailable when the database cannot be reached or does not finish in time."""
        bound = self.settings.operation_timeout_seconds
        deadline = asyncio.timeout(bound)
        try:
            async with deadline, self.sessions() as session, session.begin():
                yield session
        except (SQLAlchemyError, OSError) as exc:
            reason = (
                f"the database did not finish within {bound:g} s"
                if deadline.expired()
                else unavailable_reason(exc)
            )
            if reason is None:
                raise
            raise self._unavailable(reason, exc) from None

    async def ping(self) -> None:
        """Raise Unavailable unless the database answers `SELECT 1` (callers bound the wait)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            reason = unavailable_reason(exc) or f"unexpected {type(exc).__name__}"
            raise self._unavailable(reason, exc) from None

    def _unavailable(self, reason: str, exc: BaseException) -> Unavailable:
        # Logged with the driver's own message only: SQLAlchemy's text carries the statement
        # and its parameters.
        orig = getattr(exc, "orig", None) or exc
        said = f": {orig}" if str(orig) else ""
        log.warning("database unavailable: %s (%s%s)", reason, type(orig).__name__, said)
        return Unavailable(
            f"{reason}; try again shortly",
            retry_after=self.settings.retry_after_seconds,
            reason="database-unavailable",
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _drop_if_unanswered(dbapi_connection: object, _record: object, exc: object) -> None:
    # A connection given up on (timed out, cancelled) would otherwise be closed politely,
    # waiting up to 2 s more for a frozen server to acknowledge; drop it at once instead.
    if isinstance(exc, (TimeoutError, asyncio.CancelledError)):
        driver = getattr(dbapi_connection, "driver_connection", None)
        terminate = getattr(driver, "terminate", None)
        if callable(terminate):
            terminate()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets readers proceed during a write; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
