"""The audit outbox on the real API server: a row whose database is away waits in the cluster as a
ConfigMap, survives the process that wrote it, and the next leader delivers it to the database
with its original time and request id."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devtools.ports import free_port
from onyxia_py.db import AuditLog, Database, upgrade
from onyxia_py.kube import KubeClient
from onyxia_py.logs import request_id_var
from onyxia_py.services.outbox import LABEL, AuditOutbox, KubeConfigMaps
from onyxia_py.settings import DatabaseSettings, KubernetesSettings


def test_a_row_outlives_its_process_and_reaches_the_database(
    tmp_path: Path, kube_settings: KubernetesSettings, namespace: str
) -> None:
    # A PostgreSQL nobody listens on: the real driver's refusal, as when the server is down.
    away = Database(
        DatabaseSettings(
            url=f"postgresql+asyncpg://onyxia:pw@127.0.0.1:{free_port()}/onyxia",
            connect_timeout_seconds=2,
        )
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"

    async def run() -> None:
        kube = KubeClient(kube_settings)
        try:
            first = AuditOutbox(AuditLog(away), KubeConfigMaps(kube), namespace)
            token = request_id_var.set("req-outbox-1")
            try:
                await first.record(
                    actor="alice",
                    action="service.install",
                    target="p/jupyter-1",
                    outcome="success",
                    details={"chart": "jupyter-python"},
                )
            finally:
                request_id_var.reset(token)
            assert first.waiting == 0  # in the cluster, not in memory
            kept = await kube.list("ConfigMap", namespace, label_selector=f"{LABEL}=true")
            assert len(kept) == 1
            await away.close()
            del first  # the process that wrote it is gone

            await upgrade(url)
            database = Database(DatabaseSettings(url=url))
            try:
                leader = AuditOutbox(AuditLog(database), KubeConfigMaps(kube), namespace)
                assert await leader.deliver() == 1
                (row,) = await AuditLog(database).recent(action="service.install")
                assert (row.actor, row.target, row.outcome) == ("alice", "p/jupyter-1", "success")
                assert row.request_id == "req-outbox-1"
                assert row.details == {"chart": "jupyter-python"}
                left = await kube.list("ConfigMap", namespace, label_selector=f"{LABEL}=true")
                assert left == []
                assert await leader.deliver() == 0
            finally:
                await database.close()
        finally:
            kube.close()

    asyncio.run(run())
