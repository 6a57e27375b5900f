"""A service after its launch: details, suspend and resume."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from onyxia_py.accounts.models import Principal
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.values import merge
from onyxia_py.db import Audit
from onyxia_py.errors import Conflict, FieldError, Forbidden, Invalid, NotFound, OnyxiaError
from onyxia_py.helm import HelmEngine
from onyxia_py.identity import Impersonation
from onyxia_py.kube import Kube
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.models import Project
from onyxia_py.services import objects
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.listing import HTTPS_URL, PodBrief, helm_revision
from onyxia_py.services.models import ServiceMeta

log = logging.getLogger(__name__)
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|key|credential)")
MASK = "********"


_PASSWORD_KEY = re.compile(r"(?i)(password|passwd)")


def masked(values: Any, *, passwords_shown: bool = False) -> Any:
    """`values` with every secret-looking entry replaced (keys like password, token, key);
    `passwords_shown` keeps the passwords (a tool's login, which Onyxia's web reads from a
    service's values to show it to the user), never keys, tokens or secrets."""

    def hidden(key: object, value: object) -> bool:
        if not (isinstance(value, str) and value and _SECRET_KEY.search(str(key))):
            return False
        return not (passwords_shown and _PASSWORD_KEY.fullmatch(str(key)))

    if isinstance(values, dict):
        return {
            k: MASK if hidden(k, v) else masked(v, passwords_shown=passwords_shown)
            for k, v in values.items()
        }
    if isinstance(values, list):
        return [masked(v, passwords_shown=passwords_shown) for v in values]
    return values


@dataclass(frozen=True)
class ContainerState:
    """One container of a pod."""

    name: str
    ready: bool
    restarts: int
    waiting: str | None


@dataclass(frozen=True)
class PodState:
    """One pod of a service."""

    name: str
    phase: str
    ready: bool
    containers: tuple[ContainerState, ...]


@dataclass(frozen=True)
class ControllerState:
    """A Deployment or StatefulSet of a service."""

    kind: str
    name: str
    replicas: int
    ready: int


@dataclass(frozen=True)
class EventState:
    """A Kubernetes event about one of a service's objects."""

    type: str
    reason: str
    message: str
    object: str
    count: int
    last_seen: str | None


@dataclass(frozen=True)
class ServiceDetail:
    """Everything a user sees about one service."""

    meta: ServiceMeta
    status: str
    revision: int
    suspended: bool
    urls: tuple[str, ...]
    notes: str
    values: dict[str, Any]
    pods: tuple[PodState, ...]
    controllers: tuple[ControllerState, ...]
    events: tuple[EventState, ...]


def service_events(
    events: list[dict[str, Any]], release: str, names: set[str]
) -> tuple[EventState, ...]:
    """The events about `release`'s objects (by name, or named after it), latest last."""
    found = []
    for event in events:
        involved = event.get("involvedObject") or {}
        name = str(involved.get("name", ""))
        if name not in names and not name.startswith(release):
            continue
        found.append(
            EventState(
                type=str(event.get("type") or "Normal"),
                reason=str(event.get("reason") or ""),
                message=str(event.get("message") or ""),
                object=f"{involved.get('kind', '')}/{name}",
                count=int(event.get("count") or 1),
                last_seen=event.get("lastTimestamp")
                or event.get("eventTime")
                or (event.get("metadata") or {}).get("creationTimestamp"),
            )
        )
    return tuple(sorted(found, key=lambda e: e.last_seen or ""))


def pod_state(pod: PodBrief) -> PodState:
    """A pod's readiness and its containers' waiting reasons (from the listing cache)."""
    waiting = {w.container: w.reason for w in pod.waiting}
    restarts = pod.restarts + (0,) * (len(pod.containers) - len(pod.restarts))
    containers = tuple(
        ContainerState(name=name, ready=ready, restarts=count, waiting=waiting.get(name))
        for (name, ready), count in zip(pod.containers, restarts, strict=False)
    )
    return PodState(pod.name, pod.phase, pod.ready, containers)


class Services:
    """Reads and changes of launched services, as their user."""

    def __init__(
        self,
        *,
        kube: Kube,
        helm: HelmEngine,
        bootstrap: ProjectBootstrap,
        catalogs: Catalogs,
        audit: Audit,
        cache: ServiceCache,
        url_template: str = HTTPS_URL,
    ) -> None:
        self.cache = cache
        self.url_template = url_template
        self.kube = kube
        self.helm = helm
        self.bootstrap = bootstrap
        self.catalogs = catalogs
        self.audit = audit

    async def meta(
        self, principal: Principal, project: Project, release: str
    ) -> tuple[ServiceMeta, Impersonation]:
        """A service the caller may see (their own, or shared in a group project)."""
        # Callers with bearer tokens never "log in": their project may not exist yet.
        await self.bootstrap.ensure(project, principal.identity)
        as_user = self.bootstrap.impersonation(principal.identity)
        try:
            secret = await self.kube.get(
                "Secret", objects.meta_name(release), project.namespace, as_=as_user
            )
        except NotFound:
            raise NotFound(f"no service {release} in {project.id}") from None
        meta = objects.read_meta(secret)
        if meta.owner != principal.username and not meta.share:
            raise NotFound(f"no service {release} in {project.id}")
        return meta, as_user

    async def launch_records(
        self, principal: Principal, project: Project
    ) -> dict[str, tuple[dict[str, Any], int]]:
        """Each service's launch values (its record Secret's) and latest Helm revision (0: no
        release yet), read as the caller: what Onyxia's listing shows beside the cached lines,
        which carry neither (listings read the records' mirrors, never Secrets)."""
        await self.bootstrap.ensure(project, principal.identity)
        as_user = self.bootstrap.impersonation(principal.identity)
        namespace = project.namespace
        records, releases = await asyncio.gather(
            self.kube.list("Secret", namespace, label_selector=objects.RELEASE_LABEL, as_=as_user),
            self.kube.list(
                "Secret", namespace, label_selector="owner=helm", metadata_only=True, as_=as_user
            ),
        )
        revisions: dict[str, int] = {}
        for secret in releases:
            found = helm_revision(secret)
            if found is not None:
                revisions[found[0]] = max(found[1], revisions.get(found[0], 0))
        metas = (objects.read_meta(secret) for secret in records)
        return {m.release: (m.overrides, revisions.get(m.release, 0)) for m in metas}

    async def detail(self, principal: Principal, project: Project, release: str) -> ServiceDetail:
        """Status, URLs, notes, masked values, pods, controllers and events of one service."""
        meta, as_user = await self.meta(principal, project, release)
        namespace = project.namespace
        info, values, events = await asyncio.gather(
            self.helm.status(release, namespace=namespace, as_=as_user),
            self.helm.get_values(release, namespace=namespace, as_=as_user),
            self.kube.list("Event", namespace, as_=as_user),
        )
        # Pods, workloads and URLs as the shared watches keep them (no call of their own).
        await self.cache.ensure(namespace)
        pods = self.cache.pods(namespace, release)
        controllers = tuple(
            ControllerState(kind, name, brief.replicas, brief.ready)
            for kind, name, brief in self.cache.controllers(namespace, release)
        )
        names = {p.name for p in pods} | {c.name for c in controllers}
        names.add(objects.meta_name(release))
        urls = self.cache.urls(namespace, release)
        return ServiceDetail(
            meta=meta,
            status=info.status,
            revision=info.revision,
            suspended=bool((values.get("global") or {}).get("suspend")),
            urls=urls,
            notes=info.notes,
            values=masked(values),
            pods=tuple(pod_state(p) for p in pods),
            controllers=controllers,
            events=service_events(events, release, names),
        )

    async def log_source(
        self,
        principal: Principal,
        project: Project,
        release: str,
        pod: str | None = None,
        container: str | None = None,
    ) -> tuple[str, str, Impersonation]:
        """(pod, container, identity) to read a service's log as the caller: the pod named
        (else its first), the container named (else the pod's first)."""
        detail = await self.detail(principal, project, release)
        chosen = next((p for p in detail.pods if pod in (None, p.name)), None)
        if chosen is None:
            raise NotFound(f"{release} has no pod {pod!r}" if pod else f"{release} has no pod yet")
        names = [c.name for c in chosen.containers]
        name = container or (names[0] if names else None)
        if name is None or (container is not None and container not in names):
            raise NotFound(f"pod {chosen.name} has no container {container!r}")
        return chosen.name, name, self.bootstrap.impersonation(principal.identity)

    async def change(
        self,
        principal: Principal,
        project: Project,
        release: str,
        *,
        friendly_name: str | None,
        share: bool | None,
    ) -> ServiceMeta:
        """Rename or share/unshare one of the caller's services."""
        meta, as_user = await self.meta(principal, project, release)
        if meta.owner != principal.username:
            raise Forbidden(f"{release} belongs to {meta.owner}: only they can change it")
        if share and project.group is None:
            raise Invalid(
                "only services of group projects can be shared",
                [FieldError("share", "this is a personal project")],
            )

        def rename(current: ServiceMeta) -> ServiceMeta:
            return replace(
                current,
                friendly_name=friendly_name if friendly_name is not None else current.friendly_name,
                share=share if share is not None else current.share,
            )

        stored = await update_meta(self.kube, meta.namespace, release, rename, as_user)
        self.cache.observe(stored)
        changed = objects.read_meta(stored)
        await self.audit.record(
            actor=principal.username,
            action="service.update",
            target=f"{project.namespace}/{release}",
            outcome="success",
            details={"friendly_name": changed.friendly_name, "share": changed.share},
        )
        return changed

    async def suspendable(self, meta: ServiceMeta) -> bool:
        """Whether the service's chart reads `global.suspend` (Onyxia's rule: its values have
        that key), from the version it was installed with; False when it cannot be read."""
        try:
            files = await self.catalogs.installed_chart_files(
                meta.catalog, meta.chart, meta.version
            )
        except OnyxiaError:
            return False
        return any(
            isinstance(g := values.get("global"), dict) and "suspend" in g
            for values in (files.values, meta.overrides)
        )

    async def set_suspended(
        self, principal: Principal, project: Project, release: str, suspended: bool
    ) -> None:
        """Scale a service to zero or back, with the chart version it was installed with."""
        meta, as_user = await self.meta(principal, project, release)
        if meta.owner != principal.username:
            raise Forbidden(f"{release} belongs to {meta.owner}: only they can change it")
        await self.suspend_as(meta, as_user, suspended, actor=principal.username)

    async def suspend_as(
        self, meta: ServiceMeta, as_user: Impersonation, suspended: bool, *, actor: str
    ) -> None:
        """Suspend or resume `meta`'s service acting as `as_user`, and audit it as `actor`."""
        files = await self.catalogs.installed_chart_files(meta.catalog, meta.chart, meta.version)
        values = await self.helm.get_values(meta.release, namespace=meta.namespace, as_=as_user)
        await self.helm.upgrade(
            files.directory,
            release=meta.release,
            namespace=meta.namespace,
            values=merge(values, {"global": {"suspend": suspended}}),
            as_=as_user,
            wait=not suspended,
        )
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.cache.observe(
            await update_meta(
                self.kube,
                meta.namespace,
                meta.release,
                lambda m: replace(m, running_since="" if suspended else now, warned_at=""),
                as_user,
            )
        )
        await self.audit.record(
            actor=actor,
            action="service.suspend" if suspended else "service.resume",
            target=f"{meta.namespace}/{meta.release}",
            outcome="success",
        )


UPDATE_ATTEMPTS = 5


async def update_meta(
    kube: Kube,
    namespace: str,
    release: str,
    change: Callable[[ServiceMeta], ServiceMeta],
    as_user: Impersonation | None,
) -> dict[str, Any]:
    """Apply `change` to the service's current record and store it only if nobody wrote in
    between (the Secret's resourceVersion), else read again and retry: concurrent changes of
    different fields (a rename, the culler's warning, a suspension) all survive. Its mirror
    follows; the stored Secret is returned."""
    name = objects.meta_name(release)
    for _ in range(UPDATE_ATTEMPTS):
        current = await kube.get("Secret", name, namespace, as_=as_user)
        changed = objects.meta_secret(change(objects.read_meta(current)))
        version = current["metadata"].get("resourceVersion")
        patch = {"metadata": {"resourceVersion": version}, "data": changed["data"]}
        try:
            stored = await kube.patch("Secret", name, patch, namespace, as_=as_user)
        except Conflict:
            continue
        try:
            await store_mirror(kube, stored, as_user)
        except OnyxiaError as exc:  # the record is changed: the reconciler mirrors it later
            log.warning("mirroring the record of %s/%s: %s", namespace, release, exc.detail)
        return stored
    raise Conflict(f"{release} changed too often at once: try again")


async def store_mirror(kube: Kube, secret: dict[str, Any], as_user: Impersonation | None) -> None:
    """Write the mirror that listings read of a stored record Secret (`objects.record_mirror`):
    as the user, who owns both."""
    await kube.apply(objects.record_mirror(secret), as_=as_user)
