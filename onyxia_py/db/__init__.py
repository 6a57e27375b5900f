"""Database adapter: the only package that imports `sqlalchemy` and `alembic`."""

from onyxia_py.db.database import Database
from onyxia_py.db.migrate import current_revision, upgrade, upgrade_sync
from onyxia_py.db.repository import AuditLog, AuditRecord, UserRecord, Users

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Database",
    "UserRecord",
    "Users",
    "current_revision",
    "upgrade",
    "upgrade_sync",
]
