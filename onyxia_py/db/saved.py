"""Saved launch configurations, per user and project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from onyxia_py.db.database import Database
from onyxia_py.db.models import SavedLaunch


@dataclass(frozen=True)
class SavedRecord:
    """A saved launch."""

    id: int
    project: str
    name: str
    catalog: str
    chart: str
    version: str | None
    values: dict[str, Any]
    created_at: datetime


class SavedLaunches:
    """Each user's saved launches; every call is scoped to its owner."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(
        self,
        *,
        user_id: int,
        project: str,
        name: str,
        catalog: str,
        chart: str,
        version: str | None,
        values: dict[str, Any],
    ) -> SavedRecord:
        """Keep a launch."""
        row = SavedLaunch(
            user_id=user_id,
            project=project,
            name=name,
            catalog=catalog,
            chart=chart,
            version=version,
            values=values,
        )
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            return _record(row)

    async def of(self, user_id: int, project: str) -> list[SavedRecord]:
        """A user's saved launches in a project, newest first."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(SavedLaunch)
                .where(SavedLaunch.user_id == user_id, SavedLaunch.project == project)
                .order_by(SavedLaunch.id.desc())
            )
            return [_record(r) for r in rows]

    async def get(self, user_id: int, project: str, saved_id: int) -> SavedRecord | None:
        """One of the user's saved launches."""
        async with self._db.session() as session:
            row = await session.scalar(
                select(SavedLaunch).where(
                    SavedLaunch.id == saved_id,
                    SavedLaunch.user_id == user_id,
                    SavedLaunch.project == project,
                )
            )
            return _record(row) if row else None

    async def rename(self, user_id: int, project: str, saved_id: int, name: str) -> bool:
        """Rename; False if the user has no such saved launch."""
        async with self._db.session() as session:
            result = await session.execute(
                update(SavedLaunch)
                .where(
                    SavedLaunch.id == saved_id,
                    SavedLaunch.user_id == user_id,
                    SavedLaunch.project == project,
                )
                .values(name=name)
            )
            return bool(getattr(result, "rowcount", 0))

    async def delete(self, user_id: int, project: str, saved_id: int) -> bool:
        """Delete; False if the user has no such saved launch."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(SavedLaunch).where(
                    SavedLaunch.id == saved_id,
                    SavedLaunch.user_id == user_id,
                    SavedLaunch.project == project,
                )
            )
            return bool(getattr(result, "rowcount", 0))


def _record(row: SavedLaunch) -> SavedRecord:
    return SavedRecord(
        id=row.id,
        project=row.project,
        name=row.name,
        catalog=row.catalog,
        chart=row.chart,
        version=row.version,
        values=dict(row.values),
        created_at=row.created_at,
    )
