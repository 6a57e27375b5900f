"""The audit outbox: audit rows of changes that already happened, kept until the database takes
them.

A change made in the cluster (an install that ended, a suspension, a removal) must not lack its
audit row because the database was away at that moment, nor because this process died before
the database came back. So `AuditOutbox.record` writes to the database, and when that fails it
keeps the row in the cluster instead: one ConfigMap per row in the platform's own namespace,
labelled `onyxia-py.io/audit-outbox`. The leader delivers those to the database every
`interval` seconds (`deliver`), keeping each row's time and request id, then deletes them.
Only when the API server is away too does a row wait in this process's memory (bounded), and
it is written to either store as soon as one answers.

Rows of changes not yet made (a launch accepted, a token created) do not come here: those are
written before the change, and a database that cannot take them refuses the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from onyxia_py.db import AuditStore
from onyxia_py.errors import OnyxiaError
from onyxia_py.kube import KubeClient
from onyxia_py.logs import request_id_var

log = logging.getLogger(__name__)

LABEL = "onyxia-py.io/audit-outbox"
MEMORY_ROWS = 10_000  # beyond that the oldest waiting rows are logged and dropped


class ConfigMaps(Protocol):
    """The Kubernetes calls the outbox makes, as the platform itself."""

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def list(self, namespace: str, label_selector: str) -> list[dict[str, Any]]: ...

    async def delete(self, name: str, namespace: str) -> None: ...


@dataclass(frozen=True)
class Row:
    """One audit row waiting for the database."""

    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any] = field(default_factory=dict)
    at: str = ""
    request_id: str | None = None

    def manifest(self, namespace: str) -> dict[str, Any]:
        """The ConfigMap that keeps it."""
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"onyxia-audit-{secrets.token_hex(8)}",
                "namespace": namespace,
                "labels": {LABEL: "true", "app.kubernetes.io/managed-by": "onyxia-py"},
            },
            "data": {"row": json.dumps(asdict(self))},
        }

    @classmethod
    def of(cls, config_map: dict[str, Any]) -> Row:
        """Read back a kept row; ValueError when it is not one."""
        try:
            loaded = json.loads((config_map.get("data") or {})["row"])
            return cls(**loaded)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an audit row: {exc}") from None


class AuditOutbox:
    """Audit rows of done changes: to the database, else to the cluster, else to memory."""

    def __init__(
        self,
        audit: AuditStore,
        config_maps: ConfigMaps,
        namespace: str,
        *,
        interval_seconds: float = 10.0,
    ) -> None:
        self.audit = audit
        self.config_maps = config_maps
        self.namespace = namespace
        self.interval = interval_seconds
        self._waiting: deque[Row] = deque()
        self._task: asyncio.Task[None] | None = None
        self._retrying: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Rows held in this process's memory (neither store answered)."""
        return len(self._waiting)

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record a change that happened; never fails for a store being away."""
        row = Row(
            actor,
            action,
            target,
            outcome,
            details or {},
            datetime.now(UTC).isoformat(),
            request_id_var.get(),
        )
        if not await self._store(row):
            self._hold(row)

    async def _store(self, row: Row) -> bool:
        try:
            await self._to_database(row)
            return True
        except OnyxiaError as exc:
            log.warning("audit row %s %s kept for later: %s", row.action, row.target, exc.detail)
        try:
            await self.config_maps.create(row.manifest(self.namespace))
            return True
        except OnyxiaError as exc:
            log.warning("audit row %s %s kept in memory: %s", row.action, row.target, exc.detail)
            return False

    async def _to_database(self, row: Row) -> None:
        await self.audit.record(
            actor=row.actor,
            action=row.action,
            target=row.target,
            outcome=row.outcome,
            details=row.details,
            at=datetime.fromisoformat(row.at) if row.at else None,
            request_id=row.request_id,
        )

    def _hold(self, row: Row) -> None:
        if len(self._waiting) >= MEMORY_ROWS:
            lost = self._waiting.popleft()
            log.error("audit row lost (memory full): %s", asdict(lost))
        self._waiting.append(row)
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name="audit-outbox-retry")

    async def _retry(self) -> None:
        """Write the rows held in memory as soon as a store answers (this process's own)."""
        while self._waiting:
            await asyncio.sleep(min(self.interval, 5.0))
            while self._waiting:
                if not await self._store(self._waiting[0]):
                    break
                self._waiting.popleft()

    async def deliver(self) -> int:
        """Move the rows kept in the cluster to the database (the leader does); how many."""
        try:
            kept = await self.config_maps.list(self.namespace, f"{LABEL}=true")
        except OnyxiaError as exc:
            log.warning("listing the audit outbox: %s", exc.detail)
            return 0
        delivered = 0
        for config_map in sorted(kept, key=lambda c: c["metadata"].get("creationTimestamp", "")):
            name = config_map["metadata"]["name"]
            try:
                row = Row.of(config_map)
            except ValueError as exc:
                log.error("audit outbox %s is unreadable, left in place: %s", name, exc)
                continue
            try:
                await self._to_database(row)
            except OnyxiaError as exc:
                log.info("audit outbox waits for the database: %s", exc.detail)
                break
            try:
                await self.config_maps.delete(name, self.namespace)
            except OnyxiaError as exc:
                # Delivered twice at worst (at the next pass), never lost.
                log.warning("audit outbox %s delivered but not removed: %s", name, exc.detail)
            delivered += 1
        if delivered:
            log.info("audit outbox: %d rows delivered to the database", delivered)
        return delivered

    # -- the leader's job --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether this replica delivers the outbox (it leads)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Deliver at once, then every `interval` seconds."""
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name="audit-outbox")

    async def stop(self) -> None:
        """Stop delivering (leadership lost, or shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.deliver()
            except Exception:  # a surprise must not end the job
                log.exception("delivering the audit outbox")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """At shutdown: try once more to write what waits in memory."""
        await self.stop()
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        while self._waiting and await self._store(self._waiting[0]):
            self._waiting.popleft()
        for row in self._waiting:
            log.error("audit row lost at shutdown: %s", asdict(row))


class KubeConfigMaps:
    """`ConfigMaps` over the platform's Kubernetes client (its own identity)."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return await self._kube.create(manifest)

    async def list(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return await self._kube.list("ConfigMap", namespace, label_selector=label_selector)

    async def delete(self, name: str, namespace: str) -> None:
        await self._kube.delete("ConfigMap", name, namespace, missing_ok=True)
