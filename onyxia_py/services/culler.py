"""Lifetime policy: services that ran too long are suspended, with a warning Event first.

Runs in the background on the leader. A pass reads every service from the listing cache (the
shared watches), so it costs no API call until a service is due; then it reads that project's
RoleBinding to learn whom to act as, reads the record again as them, and every change is made as
the project's user (or group) and audited.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from onyxia_py.catalog.core import Catalogs
from onyxia_py.db import Audit
from onyxia_py.errors import NotFound, OnyxiaError
from onyxia_py.kube import Kube
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.services import objects
from onyxia_py.services.lifecycle import Services, update_meta
from onyxia_py.services.models import ServiceMeta
from onyxia_py.settings import ServiceSettings

log = logging.getLogger(__name__)

ACTOR = "onyxia-py"
CULLER_USER = "onyxia-py:lifetime"


@dataclass(frozen=True)
class Decision:
    """What the policy says about one running service now."""

    action: str  # "suspend", "warn" or "none"
    deadline: datetime | None


def limit_hours(
    meta: ServiceMeta, settings: ServiceSettings, per_chart: dict[str, float]
) -> float | None:
    """The running time allowed to `meta`'s service: its chart's, else GPU, else general."""
    if meta.chart in per_chart:
        return per_chart[meta.chart]
    if meta.gpus > 0 and settings.gpu_max_running_hours is not None:
        return settings.gpu_max_running_hours
    return settings.max_running_hours


def decide(
    meta: ServiceMeta, now: datetime, settings: ServiceSettings, per_chart: dict[str, float]
) -> Decision:
    """Suspend past the deadline, warn once inside the warning window, else nothing."""
    hours = limit_hours(meta, settings, per_chart)
    if hours is None or not meta.running_since:
        return Decision("none", None)
    deadline = datetime.fromisoformat(meta.running_since) + timedelta(hours=hours)
    if now >= deadline:
        return Decision("suspend", deadline)
    if not meta.warned_at and now >= deadline - timedelta(minutes=settings.warning_minutes):
        return Decision("warn", deadline)
    return Decision("none", deadline)


def warning_event(meta: ServiceMeta, deadline: datetime, now: datetime) -> dict[str, Any]:
    """A Kubernetes Event announcing the coming suspension."""
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta.release}.lifetime.{int(now.timestamp())}",
            "namespace": meta.namespace,
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": objects.meta_name(meta.release),
            "namespace": meta.namespace,
        },
        "reason": "LifetimeEnding",
        "message": f"{meta.friendly_name} will be suspended at "
        f"{deadline.isoformat(timespec='minutes')} (maximum running time reached)",
        "type": "Warning",
        "source": {"component": "onyxia-py"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class Culler:
    """Applies the lifetime policy to every managed project."""

    def __init__(
        self,
        *,
        kube: Kube,
        services: Services,
        bootstrap: ProjectBootstrap,
        catalogs: Catalogs,
        settings: ServiceSettings,
        audit: Audit,
    ) -> None:
        self.kube = kube
        self.services = services
        self.bootstrap = bootstrap
        self.catalogs = catalogs
        self.settings = settings
        self.audit = audit
        self._task: asyncio.Task[None] | None = None

    def _per_chart(self, catalog: str) -> dict[str, float]:
        try:
            return dict(self.catalogs.spec(catalog).max_running_hours)
        except NotFound:
            return {}

    async def run_once(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """One pass over every managed project's services, read from the listing cache (no
        call to the API server unless a service is due); the (action, namespace/release)
        taken."""
        now = now or datetime.now(UTC)
        cache = self.services.cache
        await cache.ensure()
        done: list[tuple[str, str]] = []
        per_chart: dict[str, dict[str, float]] = {}  # by catalogue, read once a pass
        for summary in cache.all_summaries():
            listed = summary.meta
            if not listed.running_since:
                continue  # suspended: nothing to do
            if listed.catalog not in per_chart:
                per_chart[listed.catalog] = self._per_chart(listed.catalog)
            if decide(listed, now, self.settings, per_chart[listed.catalog]).action == "none":
                continue
            target = f"{listed.namespace}/{listed.release}"
            try:
                action = await self._apply(listed.namespace, listed.release, now)
            except OnyxiaError as exc:
                log.warning("lifetime policy on %s: %s", target, exc.detail)
                continue
            if action is not None:
                done.append((action, target))
        return done

    async def _apply(self, namespace: str, release: str, now: datetime) -> str | None:
        """Decide again on the record as it is now, as its owner, and act; the action."""
        as_owner = await self.bootstrap.acting_identity(namespace, CULLER_USER)
        if as_owner is None:
            return None
        try:
            secret = await self.kube.get(
                "Secret", objects.meta_name(release), namespace, as_=as_owner
            )
        except NotFound:
            return None  # deleted meanwhile
        meta = objects.read_meta(secret)
        decision = decide(meta, now, self.settings, self._per_chart(meta.catalog))
        if decision.action == "warn" and decision.deadline is not None:
            await self.kube.create(warning_event(meta, decision.deadline, now))
            stored = await update_meta(
                self.kube,
                namespace,
                release,
                lambda m: replace(m, warned_at=now.isoformat()),
                as_owner,
            )
            self.services.cache.observe(stored)
        elif decision.action == "suspend":
            await self.services.suspend_as(meta, as_owner, True, actor=ACTOR)
            await self.audit.record(
                actor=ACTOR,
                action="service.lifetime-suspend",
                target=f"{namespace}/{release}",
                outcome="success",
                details={"owner": meta.owner, "running_since": meta.running_since},
            )
        else:
            return None
        return decision.action

    @property
    def running(self) -> bool:
        """Whether the background pass is scheduled (on the leader only)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Apply the policy on the interval, in the background."""
        self._task = asyncio.create_task(self._loop(), name="lifetime-policy")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.culling_interval_seconds)
            try:
                await self.run_once()
            except OnyxiaError as exc:
                log.warning("lifetime policy pass failed: %s", exc.detail)

    async def stop(self) -> None:
        """Stop the background pass."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
