"""Catalogue sync between replicas, with fakes behind its ports: the store of definitions and
revisions (shared by two replicas, as the database is) and the chart repositories."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.sync import CatalogRefresher, CatalogSync
from onyxia_py.db import StoredCatalog
from onyxia_py.helm.sources import ChartSource, SourceConfig
from onyxia_py.settings import CatalogSettings

SETTINGS = CatalogSettings(paths=[])


@dataclass
class Shared:
    """What every replica sees: stored definitions, revisions, and each repository's charts."""

    rows: dict[str, StoredCatalog] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)
    charts: dict[str, dict[str, str]] = field(default_factory=dict)  # location -> name: version


class FakeStore:
    """One replica's view of the shared store (remembers what it wrote)."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.written: dict[str, str] = {}

    def _bump(self, catalog_id: str) -> None:
        self.shared.revisions[catalog_id] = self.written[catalog_id] = secrets.token_hex(4)

    def save(self, catalog_id: str, spec: dict[str, Any]) -> None:
        self.shared.rows[catalog_id] = StoredCatalog(catalog_id, spec, None)
        self._bump(catalog_id)

    def delete(self, catalog_id: str) -> None:
        del self.shared.rows[catalog_id]
        self._bump(catalog_id)

    async def all(self) -> list[StoredCatalog]:
        return list(self.shared.rows.values())

    async def get(self, catalog_id: str) -> StoredCatalog | None:
        return self.shared.rows.get(catalog_id)

    async def revisions(self) -> dict[str, str]:
        return dict(self.shared.revisions)

    async def touch(self, catalog_ids: Iterable[str]) -> None:
        for catalog_id in catalog_ids:
            self._bump(catalog_id)

    def written_here(self, catalog_id: str, revision: str) -> bool:
        return self.written.get(catalog_id) == revision


class FakeSource:
    """A repository whose index is the shared charts of its location."""

    def __init__(self, shared: Shared, config: SourceConfig, base: Path) -> None:
        self.shared, self.location, self.base = shared, config.location, base

    async def index(self) -> dict[str, Any]:
        charts = self.shared.charts.get(self.location, {})
        entries = {n: [{"name": n, "version": v}] for n, v in charts.items()}
        return {"apiVersion": "v1", "entries": entries}

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        return self.base / f"{name}-{version}"

    async def close(self) -> None:
        return None


@dataclass
class Replica:
    catalogs: Catalogs
    store: FakeStore
    sync: CatalogSync
    database_ids: set[str]


async def replica(shared: Shared, tmp_path: Path, fetches: list[str] | None = None) -> Replica:
    def source(config: SourceConfig, base: Path) -> ChartSource:
        if fetches is not None:
            fetches.append(config.location)
        return FakeSource(shared, config, base)

    catalogs = Catalogs(
        SETTINGS, [], source_factory=source, base_dir=tmp_path, icon_fetcher_factory=_no_icons
    )
    store, ids = FakeStore(shared), set[str]()
    sync = CatalogSync(
        catalogs, store, unseal=lambda s: s, base_dir=tmp_path, database_ids=ids, settings=SETTINGS
    )
    await sync.load()
    await catalogs.refresh_all()
    return Replica(catalogs, store, sync, ids)


def _no_icons(config: SourceConfig) -> Any:
    raise AssertionError("no icon is fetched here")


def definition(catalog_id: str, name: str = "Catalogue") -> dict[str, Any]:
    return {"id": catalog_id, "name": name, "location": f"https://{catalog_id}.example.org"}


def charts(r: Replica, catalog_id: str) -> dict[str, str]:
    index = r.catalogs.index(catalog_id) or {}
    return {name: versions[0].version for name, versions in index.items()}


async def test_changes_made_on_one_replica_reach_the_other(tmp_path: Path) -> None:
    shared = Shared(charts={"https://extra.example.org": {"jupyter": "1.0.0"}})
    a, b = await replica(shared, tmp_path), await replica(shared, tmp_path)

    a.store.save("extra", definition("extra"))  # as the admin route does on a
    assert await a.sync.poll() == []  # its own change: applied already
    assert await b.sync.poll() == ["extra"]
    assert b.database_ids == {"extra"}
    assert charts(b, "extra") == {"jupyter": "1.0.0"}

    b.store.save("extra", definition("extra", "Renamed"))
    assert await a.sync.poll() == ["extra"]
    assert a.catalogs.spec("extra").name == "Renamed"

    a.store.delete("extra")
    assert await b.sync.poll() == ["extra"]
    assert b.catalogs.specs() == []
    assert b.database_ids == set()
    assert await b.sync.poll() == []  # nothing new


async def test_the_leaders_refresh_tells_the_others_which_index_changed(tmp_path: Path) -> None:
    shared = Shared(
        charts={
            "https://ide.example.org": {"jupyter": "1.0.0"},
            "https://db.example.org": {"postgres": "2.0.0"},
        }
    )
    for catalog_id in ("ide", "db"):  # stored before the replicas start
        shared.rows[catalog_id] = StoredCatalog(catalog_id, definition(catalog_id), None)
    fetches: list[str] = []
    leader, other = await replica(shared, tmp_path), await replica(shared, tmp_path, fetches)
    assert charts(other, "ide") == {"jupyter": "1.0.0"}
    fetches.clear()

    shared.charts["https://ide.example.org"] = {"jupyter": "1.2.0"}
    refresher = CatalogRefresher(leader.catalogs, leader.store, SETTINGS)
    assert await refresher.run_once() == ["ide"]
    assert await leader.sync.poll() == []
    assert await other.sync.poll() == ["ide"]
    assert charts(other, "ide") == {"jupyter": "1.2.0"}
    assert fetches == []  # reloaded through its existing source: the definition did not change
    assert await refresher.run_once() == []  # no change, no revision
    assert await other.sync.poll() == []
