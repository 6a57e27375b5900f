"""Who owns each project namespace: claimed once, by the first owner seen, and kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from onyxia_py.db.database import Database
from onyxia_py.db.models import ProjectOwner, utcnow
from onyxia_py.errors import Conflict


@dataclass(frozen=True)
class OwnerRecord:
    """The owner of one namespace: a user (issuer, subject) or a group (issuer, exact name)."""

    namespace: str
    kind: str
    issuer: str
    owner: str
    claimed_at: datetime


class ProjectOwners:
    """The `project_owners` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def owners(self, namespaces: list[str]) -> dict[str, OwnerRecord]:
        """The recorded owners of those namespaces (absent ones are unclaimed)."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ProjectOwner).where(ProjectOwner.namespace.in_(namespaces))
            )
            return {row.namespace: _owner(row) for row in rows}

    async def claim(self, namespace: str, *, kind: str, issuer: str, owner: str) -> OwnerRecord:
        """Record `owner` for `namespace` unless someone holds it already; the holder either way."""
        try:
            async with self._db.session() as session:
                row = await session.get(ProjectOwner, namespace)
                if row is None:
                    row = ProjectOwner(
                        namespace=namespace,
                        kind=kind,
                        issuer=issuer,
                        owner=owner,
                        claimed_at=utcnow(),
                    )
                    session.add(row)
                    await session.flush()
                return _owner(row)
        except IntegrityError:  # claimed by another request at the same moment: theirs
            async with self._db.session() as session:
                row = await session.get(ProjectOwner, namespace)
                if row is None:
                    raise Conflict(f"namespace {namespace} changed hands: try again") from None
                return _owner(row)


def _owner(row: ProjectOwner) -> OwnerRecord:
    return OwnerRecord(row.namespace, row.kind, row.issuer, row.owner, row.claimed_at)
