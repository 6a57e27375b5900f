"""Which database failures become "the database is unavailable": real driver exceptions, as
SQLAlchemy wraps them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg.exceptions as pg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from onyxia_py.db.errors import unavailable_reason


def sqlite_error(tmp_path: Path, *, locked: bool) -> sqlite3.Error:
    """A real sqlite3 error: the database locked by another connection, or a missing table."""
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    if locked:
        holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("INSERT INTO t VALUES (1)" if locked else "SELECT * FROM missing")
    except sqlite3.Error as exc:
        return exc
    finally:
        other.close()
        holder.close()
    raise AssertionError("no error")


@pytest.mark.parametrize(
    "exc",
    [
        PoolTimeout("QueuePool limit reached"),
        TimeoutError(),
        ConnectionRefusedError(111, "Connect call failed"),
        OSError(113, "No route to host"),
        InterfaceError("SELECT 1", {}, pg.ConnectionDoesNotExistError("connection was closed")),
        DBAPIError("SELECT 1", {}, pg.QueryCanceledError("statement timeout")),
        DBAPIError("SELECT 1", {}, pg.AdminShutdownError("terminating connection")),
        DBAPIError("SELECT 1", {}, pg.CannotConnectNowError("the database is starting up")),
        DBAPIError("SELECT 1", {}, pg.TooManyConnectionsError("too many clients")),
        DBAPIError("SELECT 1", {}, RuntimeError("lost"), connection_invalidated=True),
    ],
    ids=lambda exc: type(getattr(exc, "orig", None) or exc).__name__,
)
def test_connection_level_failures_mean_unavailable(exc: BaseException) -> None:
    assert unavailable_reason(exc)


@pytest.mark.parametrize(
    "exc",
    [
        IntegrityError("INSERT", {}, pg.UniqueViolationError("duplicate key")),
        DBAPIError("UPDATE", {}, pg.RaiseError("audit_events is append-only")),
        DBAPIError("SELECT", {}, pg.InvalidPasswordError("password authentication failed")),
        ValueError("not a database error"),
    ],
    ids=lambda exc: type(getattr(exc, "orig", None) or exc).__name__,
)
def test_other_failures_are_left_alone(exc: BaseException) -> None:
    assert unavailable_reason(exc) is None


def test_sqlite_busy_is_unavailable_but_a_missing_table_is_not(tmp_path: Path) -> None:
    busy = OperationalError("INSERT", {}, sqlite_error(tmp_path, locked=True))
    assert unavailable_reason(busy) == "the database cannot be used now (SQLITE_BUSY)"
    missing = OperationalError("SELECT", {}, sqlite_error(tmp_path, locked=False))
    assert unavailable_reason(missing) is None


def test_the_reason_names_no_statement_or_parameter() -> None:
    exc = DBAPIError(
        "SELECT * FROM api_tokens WHERE hash = $1", ("s3cr3t",), pg.QueryCanceledError()
    )
    reason = unavailable_reason(exc)
    assert reason is not None
    assert "api_tokens" not in reason
    assert "s3cr3t" not in reason
