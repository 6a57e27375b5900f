"""Which database failures mean "the database is unavailable", told apart by exception type,
SQLSTATE or SQLite result code, never by message text."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATE classes of an unusable server: 08 connection exception, 53 insufficient resources
# (too many connections, disk full), 57 operator intervention (statement timeout or cancel,
# shutdown, starting up).
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
# SQLite primary result codes that say the file cannot be used now, unlike a syntax error or
# a missing table (also OperationalError): BUSY, LOCKED, IOERR, FULL, CANTOPEN.
_UNAVAILABLE_SQLITE_CODES = frozenset({5, 6, 10, 13, 14})


def unavailable_reason(exc: BaseException) -> str | None:
    """Why `exc` means the database is unavailable, in words fit for a user; None when it is
    something else (a constraint, a bug), which callers handle or which stays a 500."""
    if isinstance(exc, IntegrityError):
        return None  # callers catch it (a claim or a name taken at the same moment)
    if isinstance(exc, PoolTimeout):
        return "no database connection became free in time"
    if isinstance(exc, TimeoutError):  # asyncpg's connect and command timeouts
        return "the database did not answer in time"
    if isinstance(exc, OSError):
        return f"the database cannot be reached ({type(exc).__name__})"
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        if sqlite_code & 0xFF in _UNAVAILABLE_SQLITE_CODES:
            return f"the database cannot be used now ({getattr(orig, 'sqlite_errorname', '?')})"
        return None
    if exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError)):
        return f"the database connection failed ({type(orig).__name__})"
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return f"the database cannot serve requests now (SQLSTATE {sqlstate})"
    return None
