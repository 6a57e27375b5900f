"""Catalogues made by administrators, stored as their definition (without the password)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from onyxia_py.db.database import Database
from onyxia_py.db.models import CatalogRow, utcnow


@dataclass(frozen=True)
class StoredCatalog:
    """A stored definition; the password stays sealed."""

    id: str
    spec: dict[str, Any]
    password_sealed: str | None


class CatalogStore:
    """Admin-made catalogues."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[StoredCatalog]:
        """Every stored catalogue."""
        async with self._db.session() as session:
            rows = await session.scalars(select(CatalogRow).order_by(CatalogRow.id))
            return [StoredCatalog(r.id, dict(r.spec), r.password_sealed) for r in rows]

    async def save(
        self, catalog_id: str, spec: dict[str, Any], password_sealed: str | None, by: str
    ) -> None:
        """Create or replace a catalogue."""
        async with self._db.session() as session:
            row = await session.get(CatalogRow, catalog_id)
            if row is None:
                row = CatalogRow(id=catalog_id)
                session.add(row)
            row.spec, row.password_sealed = spec, password_sealed
            row.updated_at, row.updated_by = utcnow(), by

    async def delete(self, catalog_id: str) -> bool:
        """Delete a catalogue; False if there was none."""
        async with self._db.session() as session:
            result = await session.execute(delete(CatalogRow).where(CatalogRow.id == catalog_id))
            return bool(getattr(result, "rowcount", 0))
