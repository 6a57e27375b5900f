"""Database adapter: the only package that imports `sqlalchemy` and `alembic`."""

from onyxia_py.db.audit import Audit, AuditStore
from onyxia_py.db.catalogs import CatalogStore, StoredCatalog
from onyxia_py.db.database import Database
from onyxia_py.db.migrate import current_revision, upgrade, upgrade_sync
from onyxia_py.db.projects import OwnerRecord, ProjectOwners
from onyxia_py.db.repository import AuditLog, AuditRecord, UserRecord, Users
from onyxia_py.db.saved import SavedLaunches, SavedRecord
from onyxia_py.db.sessions import ApiTokenRecord, ApiTokenStore, SessionRecord, SessionStore

__all__ = [
    "ApiTokenRecord",
    "ApiTokenStore",
    "Audit",
    "AuditLog",
    "AuditRecord",
    "AuditStore",
    "CatalogStore",
    "Database",
    "OwnerRecord",
    "ProjectOwners",
    "SavedLaunches",
    "SavedRecord",
    "SessionRecord",
    "SessionStore",
    "StoredCatalog",
    "UserRecord",
    "Users",
    "current_revision",
    "upgrade",
    "upgrade_sync",
]
