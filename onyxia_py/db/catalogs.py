"""Catalogues made by administrators, stored as their definition (without the password), and the
revision of every catalogue that changed, which each replica polls."""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from onyxia_py.db.database import Database
from onyxia_py.db.models import CatalogRevision, CatalogRow, utcnow
from onyxia_py.errors import Unavailable

# Revisions of one catalogue remembered as this process's own.
WRITTEN_KEPT = 64


@dataclass(frozen=True)
class StoredCatalog:
    """A stored definition; the password stays sealed."""

    id: str
    spec: dict[str, Any]
    password_sealed: str | None


class CatalogStore:
    """Admin-made catalogues, and catalogue revisions."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # The revisions this process wrote: it applied those changes already.
        # Every recent revision this process wrote, per catalogue: a poll that reads an older
        # one of ours (written before the latest) must not take it for another replica's and
        # apply the definition stored then over the newer one.
        self._written: dict[str, deque[str]] = {}

    async def all(self) -> list[StoredCatalog]:
        """Every stored catalogue."""
        async with self._db.session() as session:
            rows = await session.scalars(select(CatalogRow).order_by(CatalogRow.id))
            return [StoredCatalog(r.id, dict(r.spec), r.password_sealed) for r in rows]

    async def get(self, catalog_id: str) -> StoredCatalog | None:
        """One stored catalogue, or None."""
        with _unavailable():
            async with self._db.session() as session:
                row = await session.get(CatalogRow, catalog_id)
                return StoredCatalog(row.id, dict(row.spec), row.password_sealed) if row else None

    async def save(
        self, catalog_id: str, spec: dict[str, Any], password_sealed: str | None, by: str
    ) -> None:
        """Create or replace a catalogue (and give it a new revision)."""
        async with self._db.session() as session:
            row = await session.get(CatalogRow, catalog_id)
            if row is None:
                row = CatalogRow(id=catalog_id)
                session.add(row)
            row.spec, row.password_sealed = spec, password_sealed
            row.updated_at, row.updated_by = utcnow(), by
            await self._bump(session, catalog_id)

    async def delete(self, catalog_id: str) -> bool:
        """Delete a catalogue (its revision changes and stays); False if there was none."""
        async with self._db.session() as session:
            result = await session.execute(delete(CatalogRow).where(CatalogRow.id == catalog_id))
            await self._bump(session, catalog_id)
            return bool(getattr(result, "rowcount", 0))

    async def revisions(self) -> dict[str, str]:
        """The current revision of every catalogue that ever changed."""
        with _unavailable():
            async with self._db.session() as session:
                rows = await session.execute(
                    select(CatalogRevision.catalog_id, CatalogRevision.revision)
                )
                return {catalog_id: revision for catalog_id, revision in rows}

    async def touch(self, catalog_ids: Iterable[str]) -> None:
        """New revisions for `catalog_ids` (their index changed), so other replicas reload them."""
        with _unavailable():
            async with self._db.session() as session:
                for catalog_id in catalog_ids:
                    await self._bump(session, catalog_id)

    def written_here(self, catalog_id: str, revision: str) -> bool:
        """Whether this process wrote `revision` (and so applied that change already)."""
        return revision in self._written.get(catalog_id, ())

    async def _bump(self, session: AsyncSession, catalog_id: str) -> None:
        revision = secrets.token_hex(16)
        row = await session.get(CatalogRevision, catalog_id)
        if row is None:
            session.add(CatalogRevision(catalog_id=catalog_id, revision=revision))
        else:
            row.revision, row.changed_at = revision, utcnow()
        # Noted before the commit, so this process's own poll never takes it for someone else's.
        self._written.setdefault(catalog_id, deque(maxlen=WRITTEN_KEPT)).append(revision)


@contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise Unavailable(f"database unreachable: {type(exc).__name__}") from None
