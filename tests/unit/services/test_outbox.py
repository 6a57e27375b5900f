"""The audit outbox: rows of done changes reach the database whatever was away when they
happened (fakes behind `AuditStore` and `ConfigMaps`: no database, no cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from onyxia_py.errors import Unavailable
from onyxia_py.logs import request_id_var
from onyxia_py.services import outbox
from onyxia_py.services.outbox import LABEL, AuditOutbox

NS = "onyxia"


class Database:
    """Audit rows, or Unavailable while `up` is False."""

    def __init__(self) -> None:
        self.up = True
        self.rows: list[dict[str, Any]] = []

    async def record(self, **row: Any) -> None:
        if not self.up:
            raise Unavailable("the database is unavailable")
        self.rows.append(row)


class Cluster:
    """ConfigMaps by name, or Unavailable while `up` is False."""

    def __init__(self) -> None:
        self.up = True
        self.deletes_fail = False
        self.maps: dict[str, dict[str, Any]] = {}

    def _check(self) -> None:
        if not self.up:
            raise Unavailable("the API server is unavailable")

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._check()
        self.maps[manifest["metadata"]["name"]] = manifest
        return manifest

    async def list(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self._check()
        assert label_selector == f"{LABEL}=true"
        return [m for m in self.maps.values() if m["metadata"]["namespace"] == namespace]

    async def delete(self, name: str, namespace: str) -> None:
        self._check()
        if self.deletes_fail:
            raise Unavailable("the API server is unavailable")
        self.maps.pop(name, None)


async def until(check: Callable[[], bool]) -> None:
    """Poll a fake's state (no event to wait on: the fakes are plain objects)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


def row(box: AuditOutbox, action: str = "service.install") -> Any:
    return box.record(actor="alice", action=action, target="ns/r1", outcome="success")


def test_a_row_goes_straight_to_the_database_when_it_answers() -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS)
    asyncio.run(row(box))
    assert [r["action"] for r in db.rows] == ["service.install"]
    assert cluster.maps == {}


def test_a_row_waits_in_the_cluster_and_keeps_its_time_and_request() -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS)

    async def run() -> None:
        db.up = False
        token = request_id_var.set("req-42")
        try:
            await row(box)
        finally:
            request_id_var.reset(token)
        assert len(cluster.maps) == 1
        assert await box.deliver() == 0  # still down: nothing moves, nothing is lost
        assert len(cluster.maps) == 1
        db.up = True
        assert await box.deliver() == 1

    asyncio.run(run())
    assert cluster.maps == {}
    (delivered,) = db.rows
    assert delivered["request_id"] == "req-42"
    assert isinstance(delivered["at"], datetime)
    assert delivered["details"] == {}


def test_with_both_away_the_row_waits_in_memory_until_one_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS, interval_seconds=0.01)

    async def run() -> None:
        db.up = cluster.up = False
        await row(box)
        await row(box, "service.delete")
        assert box.waiting == 2
        cluster.up = True
        await until(lambda: box.waiting == 0)
        assert len(cluster.maps) == 2
        db.up = True
        assert await box.deliver() == 2

    asyncio.run(run())
    assert sorted(r["action"] for r in db.rows) == ["service.delete", "service.install"]


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "MEMORY_ROWS", 3)
    db, cluster = Database(), Cluster()
    db.up = cluster.up = False
    box = AuditOutbox(db, cluster, NS, interval_seconds=60)

    async def run() -> None:
        for _ in range(5):
            await row(box)
        assert box.waiting == 3
        await box.close()

    asyncio.run(run())


def test_a_row_delivered_but_not_removed_is_delivered_again_not_lost() -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS)

    async def run() -> None:
        db.up = False
        await row(box)
        db.up = True
        cluster.deletes_fail = True
        assert await box.deliver() == 1
        cluster.deletes_fail = False
        assert await box.deliver() == 1

    asyncio.run(run())
    assert len(db.rows) == 2  # at least once: twice at worst
    assert cluster.maps == {}


def test_an_unreadable_row_is_left_in_place_and_the_others_go() -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS)
    cluster.maps["odd"] = {"metadata": {"name": "odd", "namespace": NS}, "data": {}}

    async def run() -> None:
        db.up = False
        await row(box)
        db.up = True
        assert await box.deliver() == 1

    asyncio.run(run())
    assert list(cluster.maps) == ["odd"]
    assert len(db.rows) == 1


def test_the_leader_job_delivers_at_start_and_stops() -> None:
    db, cluster = Database(), Cluster()
    box = AuditOutbox(db, cluster, NS, interval_seconds=0.01)

    async def run() -> None:
        db.up = False
        await row(box)
        db.up = True
        await box.start()
        assert box.running
        await until(lambda: not cluster.maps)
        await box.stop()
        assert not box.running

    asyncio.run(run())
    assert len(db.rows) == 1
