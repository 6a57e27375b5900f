"""Keeping every replica's catalogues in step.

Administrators change catalogues on whichever replica answers them, and only the leader reloads
every catalogue on the interval. Both leave a new revision in the database; every replica polls
the revisions every `catalogs.sync_interval_seconds` and brings each changed catalogue in line:
with its stored definition (made, changed, removed) or, when that did not change, by reloading
its index. A replica skips the revisions it wrote itself: it applied those changes already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.catalog.specs import parse_spec
from onyxia_py.db import StoredCatalog
from onyxia_py.errors import OnyxiaError
from onyxia_py.settings import CatalogSettings

log = logging.getLogger(__name__)

# The stored password, unsealed (None when it cannot be: a changed key, a tampered value).
Unseal = Callable[[str], str | None]


class StoredCatalogs(Protocol):
    """Catalogues kept in the database, and the revision of every catalogue that changed."""

    async def all(self) -> list[StoredCatalog]:
        """Every stored catalogue."""
        ...

    async def get(self, catalog_id: str) -> StoredCatalog | None:
        """One stored catalogue, or None."""
        ...

    async def revisions(self) -> dict[str, str]:
        """The current revision of every catalogue that changed."""
        ...

    async def touch(self, catalog_ids: Iterable[str]) -> None:
        """New revisions for `catalog_ids`."""
        ...

    def written_here(self, catalog_id: str, revision: str) -> bool:
        """Whether this process wrote `revision`."""
        ...


class CatalogSync:
    """Runs on every replica: declares the stored catalogues at start, then follows changes."""

    def __init__(
        self,
        catalogs: Catalogs,
        store: StoredCatalogs,
        *,
        unseal: Unseal,
        base_dir: Path,
        database_ids: set[str],
        settings: CatalogSettings,
    ) -> None:
        self._catalogs = catalogs
        self._store = store
        self._unseal = unseal
        self._base = base_dir
        # Which catalogues come from the database (shared with the admin routes).
        self._database_ids = database_ids
        self._settings = settings
        self._seen: dict[str, str] = {}
        self._problem: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Declare every stored catalogue, before `Catalogs.start` (a broken one is skipped)."""
        # Revisions first: a change made while the rows are read is applied again at the poll.
        self._seen = await self._store.revisions()
        for stored in await self._store.all():
            spec = self._spec(stored)
            if spec is None:
                continue
            try:
                self._catalogs.declare(spec)
            except OnyxiaError as exc:
                log.error("stored catalogue %s is unusable: %s", stored.id, exc.detail)
                continue
            self._database_ids.add(spec.id)

    async def start(self) -> None:
        """Poll for changes in the background."""
        self._task = asyncio.create_task(self._loop(), name="catalog-sync")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        retry_at = time.monotonic() + self._settings.refresh_interval_seconds
        while True:
            await asyncio.sleep(self._settings.sync_interval_seconds)
            try:
                await self.poll()
            except OnyxiaError as exc:
                if exc.detail != self._problem:  # once per distinct problem
                    log.warning("catalogue sync: %s; retrying", exc.detail)
                self._problem = exc.detail
            else:
                if self._problem is not None:
                    log.info("catalogue sync: working again")
                self._problem = None
            if time.monotonic() >= retry_at:
                retry_at = time.monotonic() + self._settings.refresh_interval_seconds
                await self.retry_failed()

    async def poll(self) -> list[str]:
        """Apply the changes made elsewhere since the last poll; the catalogues they touched."""
        applied: list[str] = []
        for catalog_id, revision in sorted((await self._store.revisions()).items()):
            if self._seen.get(catalog_id) == revision:
                continue
            if not self._store.written_here(catalog_id, revision):
                await self._apply(catalog_id)
                applied.append(catalog_id)
            self._seen[catalog_id] = revision
        return applied

    async def retry_failed(self) -> None:
        """Reload the catalogues whose last load failed here (the leader's refresh finds no
        change to announce when only this replica failed)."""
        for status in self._catalogs.statuses():
            if status.last_error is not None:
                await self._catalogs.refresh(status.id)

    async def _apply(self, catalog_id: str) -> None:
        declared = any(spec.id == catalog_id for spec in self._catalogs.specs())
        stored = await self._store.get(catalog_id)
        if stored is None:
            if catalog_id in self._database_ids:
                log.info("catalogue %s was removed on another replica", catalog_id)
                self._database_ids.discard(catalog_id)
                if declared:
                    await self._catalogs.remove(catalog_id)
            elif declared:
                await self._catalogs.refresh(catalog_id)  # the leader found a new index
            return
        if declared and catalog_id not in self._database_ids:
            log.error("stored catalogue %s is ignored: a file declares that id", catalog_id)
            return
        spec = self._spec(stored)
        if spec is None:
            return
        if declared and self._catalogs.spec(catalog_id) == spec:
            await self._catalogs.refresh(catalog_id)  # same definition, new index
            return
        log.info(
            "catalogue %s was %s on another replica", catalog_id, "changed" if declared else "made"
        )
        self._database_ids.add(catalog_id)
        await self._catalogs.put(spec, create=not declared)

    def _spec(self, stored: StoredCatalog) -> CatalogSpec | None:
        raw = dict(stored.spec)
        if stored.password_sealed:
            raw["password"] = self._unseal(stored.password_sealed)
        try:
            return parse_spec(raw, self._base)
        except (ValueError, OnyxiaError) as exc:  # ValidationError is a ValueError
            log.error("stored catalogue %s is unusable: %s", stored.id, exc)
            return None


class CatalogRefresher:
    """The leader's job: reload every catalogue on the interval, and give each catalogue whose
    index changed a new revision, so the other replicas reload it too."""

    def __init__(
        self, catalogs: Catalogs, store: StoredCatalogs, settings: CatalogSettings
    ) -> None:
        self._catalogs = catalogs
        self._store = store
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[str]:
        """Reload every catalogue; the ones whose index changed."""
        before = {spec.id: self._catalogs.index(spec.id) for spec in self._catalogs.specs()}
        await self._catalogs.refresh_all()
        declared = {spec.id for spec in self._catalogs.specs()}
        changed = [
            catalog_id
            for catalog_id, index in before.items()
            if catalog_id in declared and self._catalogs.index(catalog_id) != index
        ]
        if changed:
            await self._store.touch(changed)
        return changed

    async def start(self) -> None:
        """Reload on the interval, in the background."""
        self._task = asyncio.create_task(self._loop(), name="catalog-refresh")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.refresh_interval_seconds)
            try:
                await self.run_once()
            except OnyxiaError as exc:
                log.warning("catalogue refresh pass failed: %s", exc.detail)

    async def stop(self) -> None:
        """Stop reloading."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
