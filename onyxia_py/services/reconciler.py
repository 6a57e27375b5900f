"""Bringing interrupted launches to an end: at start and on an interval, every managed project's
Helm releases and service records are compared, and what no live install accounts for converges.

A launch whose install was cut off (the platform or the API server stopped during it) leaves a
release pending, or failed, or a record with no release, or a release with no record. Past the
launch bound (Helm's timeout plus the cleanup time) no install can still be running, so:

    release pending/failed/uninstalling, no install here   -> rolled back; the record says why
    record without a release, never installed             -> marked failed
    release without a record (a ghost)                     -> a record is made: listed, deletable
    release settled, record still installing               -> the record says the install ended
    record whose mirror is missing or older                -> mirrored again (`mirrored`)

Each pass reads the projects the listing cache points at (a launch still installing past the
bound, workloads of a release without a record) and its share of a slow sweep over every project
(`reconcile_sweep_seconds`), so a pass costs API calls for a few projects, not for thousands.

The last one keeps listings right after a record Secret was written behind the platform's back
(or its mirror deleted), and mirrors the records of an older version at the first pass. A
mirror is only written again from a newer Secret than the one it was made from, so a pass that
read the Secrets before a concurrent change never puts an older copy back.

Each action is audited (actor `onyxia-py`). A rollback that fails is retried at the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from onyxia_py.db import Audit
from onyxia_py.errors import OnyxiaError, Unavailable
from onyxia_py.helm import HelmEngine
from onyxia_py.identity import ActingIdentity, Impersonation
from onyxia_py.kube import Kube
from onyxia_py.services import listing, objects
from onyxia_py.services.cache import managed_namespaces
from onyxia_py.services.lifecycle import store_mirror, update_meta
from onyxia_py.services.listing import helm_revision
from onyxia_py.services.models import MAX_RECORDED_EVENTS, LaunchEvent, Phase, ServiceMeta

log = logging.getLogger(__name__)

ACTOR = "onyxia-py"
RECONCILER_USER = "onyxia-py:reconciler"
INTERRUPTED = "the install was interrupted (the platform or the API server stopped during it)"
INSTALL_ENDED = "installed, but the platform stopped before it followed the launch to its end"
NEVER_INSTALLED = "its Helm release is missing: the install never started or was removed"
# A `failed` release is settled: listed as failed, deletable (and kept if the user asked to).
UNSETTLED = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")


class Mirrors(Protocol):
    """What the listing cache holds of each record (`ServiceCache.record_source`)."""

    @property
    def synced(self) -> bool: ...

    async def ensure(self, namespace: str = "", *, wait_seconds: float | None = None) -> None: ...

    def record_source(self, namespace: str, release: str) -> int | None: ...

    def managed(self) -> list[str]: ...

    def suspicious(self, settled_before: datetime) -> set[str]: ...


class Installs(Protocol):
    """The launcher: which installs run here, and how a release is removed."""

    def installing(self, namespace: str, release: str) -> bool: ...

    async def roll_back(
        self, namespace: str, release: str, as_user: Impersonation, reason: str
    ) -> None: ...


@dataclass(frozen=True)
class Action:
    """One thing a pass did: `rolled-back`, `marked-failed`, `adopted`, `install-ended`,
    `mirrored`, or `retry-later`."""

    action: str
    target: str
    detail: str


@dataclass(frozen=True)
class _Release:
    status: str
    since: datetime


class Reconciler:
    """Finds and ends interrupted launches (runs on the leader)."""

    def __init__(
        self,
        *,
        kube: Kube,
        helm: HelmEngine,
        owners: ActingIdentity,
        installs: Installs,
        audit: Audit,
        bound_seconds: float,
        interval_seconds: float,
        user_prefix: str = "",
        mirrors: Mirrors | None = None,
        sweep_seconds: float | None = None,
    ) -> None:
        self.kube = kube
        self.helm = helm
        self.owners = owners
        self.installs = installs
        self.audit = audit
        self.bound = timedelta(seconds=bound_seconds)
        self.interval_seconds = interval_seconds
        self.user_prefix = user_prefix
        self.mirrors = mirrors
        self.sweep_seconds = sweep_seconds
        self._swept = 0  # where the sweep goes on at the next pass
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> list[Action]:
        """One pass over every managed project."""
        now = now or datetime.now(UTC)
        done: list[Action] = []
        for namespace in await self._due(now):
            try:
                done += await self._project(namespace, now)
            except OnyxiaError as exc:
                log.warning("reconciling %s: %s", namespace, exc.detail)
        for action in done:
            await self.audit.record(
                actor=ACTOR,
                action=f"service.reconcile.{action.action}",
                target=action.target,
                outcome="success" if action.action != "retry-later" else "failure",
                details={"detail": action.detail},
            )
        return done

    async def _due(self, now: datetime) -> list[str]:
        """The projects this pass reads: every one without the listing cache, else those it
        points at and this pass's share of the sweep over all (none while the cache is still
        reading the cluster: a pass over thousands of projects at start is what it avoids)."""
        if self.mirrors is None:
            return await managed_namespaces(self.kube)
        if not self.mirrors.synced:
            try:
                await self.mirrors.ensure()
            except Unavailable:
                return []  # the next pass
        every = self.mirrors.managed()
        share = len(every)
        if self.sweep_seconds is not None and self.sweep_seconds > self.interval_seconds:
            share = math.ceil(len(every) * self.interval_seconds / self.sweep_seconds)
        start = self._swept % len(every) if every else 0
        swept = (every[start:] + every[:start])[:share]
        self._swept = start + share
        pointed = self.mirrors.suspicious(now - self.bound)
        return sorted(set(swept) | (pointed & set(every)))

    async def _project(self, namespace: str, now: datetime) -> list[Action]:
        as_owner = await self.owners.acting_identity(namespace, RECONCILER_USER)
        if as_owner is None:
            return []
        records = await self.kube.list(
            "Secret", namespace, label_selector=objects.RELEASE_LABEL, as_=as_owner
        )
        metas = {m.release: m for m in map(objects.read_meta, records)}
        done = await self._mirror(namespace, records, as_owner)
        releases = _latest(
            await self.kube.list("Secret", namespace, label_selector="owner=helm", as_=as_owner)
        )
        for name in sorted(set(metas) | set(releases)):
            if self.installs.installing(namespace, name):
                continue
            target = f"{namespace}/{name}"
            meta, release = metas.get(name), releases.get(name)
            if release is not None and release.status in UNSETTLED:
                if now - release.since <= self.bound:
                    continue
                if meta is None:
                    meta = await self._adopt(namespace, name, as_owner, now)
                    done.append(Action("adopted", target, "a release without a record"))
                reason = meta.failure or f"{INTERRUPTED}; Helm says {release.status}"
                try:
                    await self.installs.roll_back(namespace, name, as_owner, reason)
                except OnyxiaError as exc:
                    done.append(Action("retry-later", target, exc.detail))
                    continue
                done.append(Action("rolled-back", target, reason))
            elif release is None and meta is not None and not meta.failure:
                created = _parse(meta.created)
                if created is None or now - created <= self.bound:
                    continue
                await update_meta(
                    self.kube,
                    namespace,
                    name,
                    lambda m: replace(m, failure=m.failure or NEVER_INSTALLED),
                    as_owner,
                )
                done.append(Action("marked-failed", target, NEVER_INSTALLED))
            elif release is not None and meta is None:
                await self._adopt(namespace, name, as_owner, now)
                done.append(
                    Action("adopted", target, f"a {release.status} release without a record")
                )
            elif release is not None and meta is not None and self._left_installing(meta, now):
                # The install ended but its replica stopped before saying so on the record,
                # which listings read: say it, so the listing goes by the workloads again.
                ended = await self._end_install(namespace, name, release.status, as_owner, now)
                done.append(Action("install-ended", target, ended))
        return done

    async def _end_install(
        self, namespace: str, release: str, status: str, as_owner: Impersonation, now: datetime
    ) -> str:
        """Put on the record that its install ended (failed, if Helm says so); what it says."""
        ended = f"{INSTALL_ENDED}; Helm says {status}"
        failure = f"{INSTALL_ENDED}: the Helm install failed" if status == "failed" else ""

        def change(meta: ServiceMeta) -> ServiceMeta:
            events = (*meta.events, LaunchEvent(Phase.SCHEDULED, ended, now))
            return replace(
                meta, events=events[-MAX_RECORDED_EVENTS:], failure=meta.failure or failure
            )

        await update_meta(self.kube, namespace, release, change, as_owner)
        return ended

    def _left_installing(self, meta: ServiceMeta, now: datetime) -> bool:
        """Whether the record still says installing, past the bound, with no failure."""
        return (
            not meta.failure and listing.installing(meta) and now - meta.events[-1].at > self.bound
        )

    async def _mirror(
        self, namespace: str, records: list[dict[str, Any]], as_owner: Impersonation
    ) -> list[Action]:
        """Mirror again each record that the listing holds an older copy of, or none."""
        if self.mirrors is None or not self.mirrors.synced:
            return []  # nothing to compare with yet: the next pass does it
        done: list[Action] = []
        for secret in records:
            release = objects.read_meta(secret).release
            version = int((secret.get("metadata") or {}).get("resourceVersion") or 0)
            listed = self.mirrors.record_source(namespace, release)
            if listed is not None and listed >= version:
                continue
            await store_mirror(self.kube, secret, as_owner)
            why = "no mirror" if listed is None else "the record changed behind the platform"
            done.append(Action("mirrored", f"{namespace}/{release}", why))
        return done

    async def _adopt(
        self, namespace: str, release: str, as_owner: Impersonation, now: datetime
    ) -> ServiceMeta:
        """A record for a release that has none, so it is listed and its owner can delete it."""
        chart, version = release, ""
        try:
            for info in await self.helm.list(namespace, as_=as_owner):
                if info.name == release:
                    chart, version = info.chart or release, info.chart_version
        except OnyxiaError as exc:
            log.warning("reading release %s/%s: %s", namespace, release, exc.detail)
        meta = ServiceMeta(
            release=release,
            namespace=namespace,
            catalog="",
            chart=chart,
            version=version,
            # A personal project's owner; in a group project any member may delete it.
            owner="" if as_owner.groups else as_owner.user.removeprefix(self.user_prefix),
            friendly_name=release,
            share=False,
            created=now.isoformat(timespec="seconds"),
        )
        stored = await self.kube.apply(objects.meta_secret(meta), as_=as_owner)
        await store_mirror(self.kube, stored, as_owner)
        return meta

    async def start(self) -> None:
        """A first pass now, then one per interval, in the background."""
        self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except OnyxiaError as exc:
                log.warning("reconciliation pass failed: %s", exc.detail)
            await asyncio.sleep(self.interval_seconds)

    async def stop(self) -> None:
        """Stop the background passes."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _latest(secrets: list[dict[str, Any]]) -> dict[str, _Release]:
    """Each release's latest revision: its status, and when that revision was written."""
    latest: dict[str, tuple[int, _Release]] = {}
    for secret in secrets:
        parsed = helm_revision(secret)
        if parsed is None:
            continue
        name, revision, status = parsed
        stamp = _parse(str((secret.get("metadata") or {}).get("creationTimestamp", "")))
        if name not in latest or revision > latest[name][0]:
            latest[name] = (revision, _Release(status, stamp or datetime.now(UTC)))
    return {name: release for name, (_, release) in latest.items()}


def _parse(stamp: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
