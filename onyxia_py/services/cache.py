"""The service listing cache: each project's objects kept current by Kubernetes watches.

A listing never asks Helm (one call per release, as Onyxia does) nor even the API server: the
first listing of a project starts its watches (metadata Secrets, Helm's release Secrets read
metadata-only, pods, Deployments, StatefulSets, Ingresses, all selected by label in that
namespace only) and waits for their first list; from then on the watches keep the copy current
and listings are computed in memory. The watches act as the project's owner (read from its
`onyxia-admin` RoleBinding): the platform's own role never reads Secrets. Our own writes are
applied at once too, so a launch shows up in the very next listing. After a restart of this
process the copy is rebuilt on first use; after a restart of the API server the watches resume
from the last version they saw (or list again when it is too old).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from onyxia_py.errors import Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.keyed_locks import KeyedLocks
from onyxia_py.kube import Kube, KubeClient, KubeObject
from onyxia_py.kube.watch import Change, Listener, Reflector, WatchSpec
from onyxia_py.projects import objects as project_objects
from onyxia_py.services import listing, objects
from onyxia_py.services.listing import ControllerBrief, PodBrief, ProjectObjects, ServiceSummary
from onyxia_py.services.models import LaunchEvent, ServiceMeta

log = logging.getLogger(__name__)
T = TypeVar("T")

OBSERVER_USER = "onyxia-py:observer"
HELM_SELECTOR = "owner=helm"
# Summaries depend on the clock a little (a release missing for too long is a failure).
VIEW_SECONDS = 30.0
# How long the list of managed namespaces is reused by administrators' listings.
MANAGED_SECONDS = 5.0


class Follower(Protocol):
    """A running watch (a `Reflector`); unit tests put fakes behind this. Its first snapshot
    reaches the listener as a "sync" change (which the cache waits for)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


FollowerFactory = Callable[[WatchSpec, Listener, Impersonation | None], Follower]
IdentityLookup = Callable[[str], Awaitable[Impersonation | None]]


def watch_specs(namespace: str) -> dict[str, WatchSpec]:
    """What is watched in one project namespace, by role."""
    instance = objects.INSTANCE_LABEL
    return {
        "meta": WatchSpec("Secret", namespace, objects.RELEASE_LABEL),
        "helm": WatchSpec("Secret", namespace, HELM_SELECTOR, metadata_only=True),
        "pod": WatchSpec("Pod", namespace, instance),
        "deployment": WatchSpec("Deployment", namespace, instance),
        "statefulset": WatchSpec("StatefulSet", namespace, instance),
        "ingress": WatchSpec("Ingress", namespace, instance),
    }


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _version(obj: KubeObject) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


ENDED_KEPT = 50
ENDED_SECONDS = 600.0


@dataclass
class _Project:
    """One watched namespace: its objects, followers and the last computed view."""

    objects: ProjectObjects
    followers: list[Follower] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changes: int = 0
    meta_versions: dict[str, int] = field(default_factory=dict)
    view: tuple[int, float, list[ServiceSummary]] | None = None
    # Set (on the event loop) once every follower has handed over its first snapshot.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    synced_roles: set[str] = field(default_factory=set)
    wake: Callable[[], None] | None = None  # sets `ready` from a watch thread
    # Renderings of the current view (e.g. JSON lines), by kind; dropped when the view changes.
    rendered: dict[str, tuple[list[ServiceSummary], list[Any]]] = field(default_factory=dict)
    # The last launch events of records deleted lately (a failed launch rolled back), so a
    # follower on any replica still learns how it ended; at most ENDED_KEPT, for ENDED_SECONDS.
    ended: dict[str, tuple[tuple[LaunchEvent, ...], float]] = field(default_factory=dict)

    def remember_ended(self, meta: ServiceMeta) -> None:
        """Keep a deleted record's events a while (called under `lock`)."""
        now = time.monotonic()
        for release, (_, at) in list(self.ended.items()):
            if now - at > ENDED_SECONDS or len(self.ended) >= ENDED_KEPT:
                del self.ended[release]
        if meta.events:
            self.ended[meta.release] = (meta.events, now)


class ServiceCache:
    """Project objects kept current by watches, and the listings computed from them."""

    def __init__(
        self,
        kube: Kube,
        identity_of: IdentityLookup,
        *,
        follower_factory: FollowerFactory | None = None,
        sync_timeout_seconds: float = 15.0,
        url_template: str = listing.HTTPS_URL,
    ) -> None:
        self.kube = kube
        self._ingress_brief = functools.partial(listing.ingress_brief, url_template=url_template)
        self.identity_of = identity_of
        self.sync_timeout = sync_timeout_seconds
        self._factory = follower_factory or self._reflector
        self._projects: dict[str, _Project] = {}
        self._starting: KeyedLocks[str] = KeyedLocks()
        self._managed: tuple[float, list[str]] = (-MANAGED_SECONDS, [])

    def _reflector(
        self, spec: WatchSpec, listener: Listener, as_: Impersonation | None
    ) -> Follower:
        if not isinstance(self.kube, KubeClient):
            # Watches read the API server's streams: another `Kube` (a fake) needs a factory.
            raise TypeError("watches need the Kubernetes client, else a follower_factory")
        return Reflector(self.kube, spec, listener, as_=as_)

    # -- following projects --------------------------------------------------------------------

    async def ensure(self, namespace: str) -> None:
        """Follow `namespace` (once) and wait until its first snapshot is in."""
        project = self._projects.get(namespace)
        if project is None:
            async with self._starting.hold(namespace):
                project = self._projects.get(namespace)
                if project is None:
                    project = await self._follow(namespace)
        await self._wait_synced(namespace, project)

    async def _follow(self, namespace: str) -> _Project:
        as_owner = await self.identity_of(namespace)
        if as_owner is None:
            raise Unavailable(f"{namespace} has no owner binding yet: its services cannot be read")
        project = _Project(ProjectObjects(namespace))
        loop = asyncio.get_running_loop()

        def wake() -> None:
            loop.call_soon_threadsafe(project.ready.set)

        project.wake = wake
        for role, spec in watch_specs(namespace).items():
            listener = functools.partial(self._apply, project, role)
            project.followers.append(self._factory(spec, listener, as_owner))
        self._projects[namespace] = project
        for follower in project.followers:
            follower.start()
        return project

    async def _wait_synced(self, namespace: str, project: _Project) -> None:
        """Wait (woken by the watches, no polling) until every first snapshot is in."""
        try:
            await asyncio.wait_for(project.ready.wait(), self.sync_timeout)
        except TimeoutError:
            raise Unavailable(f"the services of {namespace} could not be read in time") from None

    def forget_project(self, namespace: str) -> None:
        """Stop following a namespace (deleted, or no longer managed)."""
        project = self._projects.pop(namespace, None)
        if project is not None:
            for follower in project.followers:
                follower.stop()

    async def close(self) -> None:
        """Stop every watch."""
        for namespace in list(self._projects):
            self.forget_project(namespace)

    async def follow_all(self) -> list[str]:
        """Follow every managed project (for administrators); their namespaces."""
        now = time.monotonic()
        if now - self._managed[0] > MANAGED_SECONDS:
            namespaces = await managed_namespaces(self.kube)
            self._managed = (now, namespaces)
            # Projects deleted since are not followed any longer.
            for gone in set(self._projects) - set(namespaces):
                self.forget_project(gone)
        namespaces = self._managed[1]
        results = await asyncio.gather(
            *(self.ensure(n) for n in namespaces if n not in self._projects),
            return_exceptions=True,
        )
        for failure in results:
            if isinstance(failure, Exception):
                log.warning("cannot follow a project for the admin listing: %s", failure)
        return [n for n in namespaces if n in self._projects]

    # -- reading -------------------------------------------------------------------------------

    def summaries(self, namespace: str) -> list[ServiceSummary]:
        """Every service of a followed namespace (newest first); call `ensure` before."""
        project = self._projects.get(namespace)
        if project is None:
            return []
        now = time.monotonic()
        view = project.view
        if view is not None and view[0] == project.changes and now - view[1] < VIEW_SECONDS:
            return view[2]
        with project.lock:
            changes = project.changes
            state = project.objects
            clock = datetime.now(UTC)
            found = [listing.summarize(state, meta, clock) for meta in state.metas.values()]
        found.sort(key=lambda s: s.meta.created, reverse=True)
        project.view = (changes, now, found)
        return found

    def changes(self, namespace: str) -> int:
        """How many changes a followed namespace has seen (-1 when not followed): a launch's
        progress looks at its pods again only when this moved."""
        project = self._projects.get(namespace)
        return -1 if project is None else project.changes

    def ended_events(self, namespace: str, release: str) -> tuple[LaunchEvent, ...] | None:
        """The last launch events of a record deleted lately; None if none is known."""
        project = self._projects.get(namespace)
        if project is None:
            return None
        with project.lock:
            kept = project.ended.get(release)
        return kept[0] if kept else None

    def pods(self, namespace: str, release: str) -> list[PodBrief]:
        """The pods of `release` in a followed namespace, by name; call `ensure` before."""
        project = self._projects.get(namespace)
        if project is None:
            return []
        with project.lock:
            found = [p for p in project.objects.pods.values() if p.release == release]
        return sorted(found, key=lambda p: p.name)

    def controllers(self, namespace: str, release: str) -> list[tuple[str, str, ControllerBrief]]:
        """(kind, name, brief) of each Deployment and StatefulSet of `release`, by kind and
        name; call `ensure` before."""
        project = self._projects.get(namespace)
        if project is None:
            return []
        kinds = {"deployment": "Deployment", "statefulset": "StatefulSet"}
        with project.lock:
            found = [
                (kinds.get(role, role), name, brief)
                for key, brief in project.objects.controllers.items()
                if brief.release == release
                for role, _, name in [key.partition("/")]
            ]
        return sorted(found, key=lambda c: (c[0], c[1]))

    def rendered(
        self, namespace: str, kind: str, render: Callable[[ServiceSummary], T]
    ) -> list[tuple[ServiceSummary, T]]:
        """Each service of `namespace` with `render(summary)`, computed once per view: listings
        of thousands of services re-encode only the projects that changed."""
        summaries = self.summaries(namespace)
        project = self._projects.get(namespace)
        if project is None:
            return []
        known = project.rendered.get(kind)
        if known is None or known[0] is not summaries:
            known = (summaries, [render(s) for s in summaries])
            project.rendered[kind] = known
        return list(zip(summaries, known[1], strict=True))

    # -- our own writes, applied at once -------------------------------------------------------

    def observe(self, secret: KubeObject) -> None:
        """A metadata Secret we just wrote (created or patched): list it without waiting."""
        namespace = str((secret.get("metadata") or {}).get("namespace", ""))
        project = self._projects.get(namespace)
        if project is not None:
            self._apply(project, "meta", Change("Secret", namespace, "modified", (secret,)))

    def mark_deleting(self, namespace: str, release: str, deleting: bool = True) -> None:
        """Show a service as being deleted (or not any more)."""
        project = self._projects.get(namespace)
        if project is None:
            return
        with project.lock:
            if deleting:
                project.objects.meta_deleting.add(release)
            else:
                project.objects.meta_deleting.discard(release)
            project.changes += 1

    def forget(self, namespace: str, release: str) -> None:
        """A service we just deleted: drop it from listings without waiting (its last version
        stays known, so a late event about the deleted Secret cannot bring it back)."""
        project = self._projects.get(namespace)
        if project is None:
            return
        with project.lock:
            gone = project.objects.metas.pop(release, None)
            if gone is not None:
                project.remember_ended(gone)
            project.objects.meta_deleting.discard(release)
            project.changes += 1

    # -- applying changes (called from watch threads) ------------------------------------------

    def _apply(self, project: _Project, role: str, change: Change) -> None:
        with project.lock:
            state = project.objects
            if role == "meta":
                self._apply_meta(project, change)
            elif role == "helm":
                _apply_helm(state, change)
            elif role == "pod":
                _apply_keyed(state.pods, change, "", listing.pod_brief)
            elif role in ("deployment", "statefulset"):
                _apply_keyed(state.controllers, change, role + "/", listing.controller_brief)
            elif role == "ingress":
                _apply_keyed(state.ingresses, change, "", self._ingress_brief)
            project.changes += 1
            if change.type == "sync" and not project.ready.is_set():
                project.synced_roles.add(role)
                if len(project.synced_roles) == len(project.followers) and project.wake:
                    project.wake()

    @staticmethod
    def _apply_meta(project: _Project, change: Change) -> None:
        state = project.objects
        if change.type == "sync":
            state.metas.clear()
            state.meta_deleting.clear()
            project.meta_versions.clear()
        for secret in change.objects:
            meta = objects.read_meta(secret)
            version = _version(secret)
            if change.type == "deleted":
                state.metas.pop(meta.release, None)
                project.remember_ended(meta)
                state.meta_deleting.discard(meta.release)
                project.meta_versions.pop(meta.release, None)
                continue
            if version and version <= project.meta_versions.get(meta.release, 0):
                continue  # a copy we already have (our own write), or an older one
            project.meta_versions[meta.release] = version
            state.metas[meta.release] = meta
            if (secret.get("metadata") or {}).get("deletionTimestamp"):
                state.meta_deleting.add(meta.release)


def _apply_helm(state: ProjectObjects, change: Change) -> None:
    if change.type == "sync":
        state.releases.clear()
    for secret in change.objects:
        revision = listing.helm_revision(secret)
        if revision is None:
            continue
        release, number, status = revision
        if change.type == "deleted":
            revisions = state.releases.get(release, {})
            revisions.pop(number, None)
            if not revisions:
                state.releases.pop(release, None)
        else:
            state.releases.setdefault(release, {})[number] = status


def _apply_keyed(
    store: dict[str, Any], change: Change, prefix: str, brief: Callable[[KubeObject], Any]
) -> None:
    if change.type == "sync":
        for key in [k for k in store if k.startswith(prefix) or not prefix]:
            del store[key]
    for obj in change.objects:
        key = prefix + _name(obj)
        if change.type == "deleted":
            store.pop(key, None)
        else:
            store[key] = brief(obj)


async def managed_namespaces(kube: Kube) -> list[str]:
    """Every namespace the platform manages (read as the platform)."""
    found = await kube.list(
        "Namespace",
        label_selector=f"{project_objects.MANAGED_LABEL}=onyxia-py",
        metadata_only=True,
    )
    return sorted(_name(n) for n in found if not (n.get("metadata") or {}).get("deletionTimestamp"))
