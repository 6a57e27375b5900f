"""Service records (metadata Secrets) on the real API server: concurrent changes of different
fields all survive (optimistic concurrency on the Secret's resourceVersion)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from onyxia_py.kube import KubeClient
from onyxia_py.services import objects
from onyxia_py.services.lifecycle import update_meta
from onyxia_py.services.models import ServiceMeta


async def test_concurrent_changes_of_a_record_all_survive(kube: KubeClient, namespace: str) -> None:
    meta = ServiceMeta(
        "jupyter-1", namespace, "ide", "jupyter", "1.0.0", "alice", "Jupyter", False, "2026-12-01"
    )
    await kube.create(objects.meta_secret(meta))
    changes = [
        lambda m: replace(m, friendly_name="renamed"),
        lambda m: replace(m, warned_at="2026-12-02T10:00:00+00:00"),
        lambda m: replace(m, running_since="2026-12-02T09:00:00+00:00"),
        lambda m: replace(m, failure="a reason"),
        lambda m: replace(m, gpus=2),
    ]
    await asyncio.gather(
        *(update_meta(kube, namespace, "jupyter-1", change, None) for change in changes)
    )
    stored = objects.read_meta(await kube.get("Secret", objects.meta_name("jupyter-1"), namespace))
    assert (stored.friendly_name, stored.warned_at, stored.running_since) == (
        "renamed",
        "2026-12-02T10:00:00+00:00",
        "2026-12-02T09:00:00+00:00",
    )
    assert (stored.failure, stored.gpus) == ("a reason", 2)
