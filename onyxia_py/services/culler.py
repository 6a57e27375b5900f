"""Lifetime policy: services that ran too long are suspended, with a warning Event first.

Runs in the background as the platform, which reads each project's RoleBinding to learn whom
to act as: every change is still made as the project's user (or group) and audited.
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
from onyxia_py.projects import objects as project_objects
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
        """One pass over every managed project; the (action, namespace/release) taken."""
        now = now or datetime.now(UTC)
        done: list[tuple[str, str]] = []
        namespaces = await self.kube.list(
            "Namespace", label_selector=f"{project_objects.MANAGED_LABEL}=onyxia-py"
        )
        for namespace in namespaces:
            name = namespace["metadata"]["name"]
            as_owner = await self.bootstrap.acting_identity(name, CULLER_USER)
            if as_owner is None:
                continue
            secrets = await self.kube.list(
                "Secret", name, label_selector=objects.RELEASE_LABEL, as_=as_owner
            )
            for secret in secrets:
                meta = objects.read_meta(secret)
                decision = decide(meta, now, self.settings, self._per_chart(meta.catalog))
                try:
                    if decision.action == "warn" and decision.deadline is not None:
                        await self.kube.create(warning_event(meta, decision.deadline, now))
                        await update_meta(
                            self.kube,
                            name,
                            meta.release,
                            lambda m: replace(m, warned_at=now.isoformat()),
                            as_owner,
                        )
                    elif decision.action == "suspend":
                        await self.services.suspend_as(meta, as_owner, True, actor=ACTOR)
                        await self.audit.record(
                            actor=ACTOR,
                            action="service.lifetime-suspend",
                            target=f"{name}/{meta.release}",
                            outcome="success",
                            details={"owner": meta.owner, "running_since": meta.running_since},
                        )
                    else:
                        continue
                except OnyxiaError as exc:
                    log.warning("lifetime policy on %s/%s: %s", name, meta.release, exc.detail)
                    continue
                done.append((decision.action, f"{name}/{meta.release}"))
        return done

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
