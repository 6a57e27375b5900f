"""The service listing cache: every project's objects, kept current by a few shared watches.

A listing never asks Helm (one call per release, as Onyxia does) nor even the API server. One
watch per kind follows the platform's objects in every namespace at once, selected by label:
the service records' ConfigMap mirrors, pods, Deployments, StatefulSets and Ingresses, plus the
managed Namespaces. So the threads and streams held are a constant (`INFORMERS`), whatever the
number of projects. The watches run as the platform itself, which may read those kinds
cluster-wide and never Secrets: the record Secrets hold the users' launch values, so listings
read their mirrors (`objects.record_mirror`), written beside each record and deleted with it.

The watches start with the application; a listing waits (woken by an event, no polling) until
each has handed over its first snapshot, listed page by page. Our own writes are applied at
once too, so a launch shows up in the very next listing. After a restart of the API server the
watches resume from the last version they saw (or list again when it is too old).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from onyxia_py.errors import OnyxiaError, Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.kube import Kube, KubeClient, KubeObject
from onyxia_py.kube.watch import Change, Listener, Reflector, WatchSpec
from onyxia_py.projects import objects as project_objects
from onyxia_py.services import listing, objects
from onyxia_py.services.listing import ControllerBrief, PodBrief, ProjectObjects, ServiceSummary
from onyxia_py.services.models import LaunchEvent, ServiceMeta

log = logging.getLogger(__name__)
T = TypeVar("T")

MANAGED_SELECTOR = f"{project_objects.MANAGED_LABEL}=onyxia-py"
# How long a listing of one project waits for the watches before reading it directly.
PROVISIONAL_SECONDS = 0.5
# A project's computed view, kept while it is read; dropped after this long unread.
VIEW_IDLE_SECONDS = 600.0

# What is watched, in every namespace, by role.
INFORMERS: dict[str, WatchSpec] = {
    "record": WatchSpec("ConfigMap", "", objects.RELEASE_LABEL),
    "pod": WatchSpec("Pod", "", objects.INSTANCE_LABEL),
    "deployment": WatchSpec("Deployment", "", objects.INSTANCE_LABEL),
    "statefulset": WatchSpec("StatefulSet", "", objects.INSTANCE_LABEL),
    "ingress": WatchSpec("Ingress", "", objects.INSTANCE_LABEL),
    "namespace": WatchSpec("Namespace", "", MANAGED_SELECTOR, metadata_only=True),
}


class Follower(Protocol):
    """A running watch (a `Reflector`); unit tests put fakes behind this. Its first snapshot
    reaches the listener as "sync" changes (which the cache waits for)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


FollowerFactory = Callable[[WatchSpec, Listener, Impersonation | None], Follower]


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _version(obj: KubeObject) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _deleting(obj: KubeObject) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


ENDED_KEPT = 50
ENDED_SECONDS = 600.0


@dataclass
class _Record:
    """A service record as its mirror says: the meta, the mirror's version, whether the
    mirror is being deleted."""

    meta: ServiceMeta
    version: int
    deleting: bool
    source: str  # the resourceVersion of the Secret it mirrors ("" if unknown)


@dataclass
class _Project:
    """One namespace's objects and the last computed view."""

    objects: ProjectObjects
    lock: threading.Lock = field(default_factory=threading.Lock)
    changes: int = 0
    meta_versions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)  # see `ServiceCache.record_source`
    view: tuple[int, list[ServiceSummary]] | None = None
    read_at: float = 0.0
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

    def set_record(self, record: _Record) -> None:
        """Store a record's newer copy (called under `lock`)."""
        state = self.objects
        release = record.meta.release
        self.meta_versions[release] = record.version
        self.sources[release] = int(record.source) if record.source.isdigit() else 0
        state.metas[release] = record.meta
        if record.deleting:
            state.meta_deleting.add(release)

    def drop_record(self, release: str) -> None:
        """A record deleted (called under `lock`)."""
        state = self.objects
        gone = state.metas.pop(release, None)
        if gone is not None:
            self.remember_ended(gone)
        state.meta_deleting.discard(release)
        self.meta_versions.pop(release, None)
        self.sources.pop(release, None)


# role -> namespace -> key -> brief: a snapshot being listed, page by page.
_Pending = dict[str, dict[str, dict[str, Any]]]


class ServiceCache:
    """Every project's objects, kept current by shared watches, and the listings from them."""

    def __init__(
        self,
        kube: Kube,
        *,
        follower_factory: FollowerFactory | None = None,
        sync_timeout_seconds: float = 15.0,
        url_template: str = listing.HTTPS_URL,
    ) -> None:
        self.kube = kube
        self._ingress_brief = functools.partial(listing.ingress_brief, url_template=url_template)
        self.sync_timeout = sync_timeout_seconds
        self._factory = follower_factory or self._reflector
        self._projects: dict[str, _Project] = {}
        self._managed: set[str] = set()
        # Guards the maps above, `_pending` and `_synced` (taken before a project's lock).
        self._lock = threading.RLock()
        self._pending: _Pending = {}
        self._listed: dict[str, int] = {}  # objects of each kind's first snapshot so far
        # Namespaces read directly while the watches were listing (see `ensure`).
        self._provisional: set[str] = set()
        self._followers: list[Follower] = []
        self._synced: set[str] = set()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    def _reflector(
        self, spec: WatchSpec, listener: Listener, as_: Impersonation | None
    ) -> Follower:
        if not isinstance(self.kube, KubeClient):
            # Watches read the API server's streams: another `Kube` (a fake) needs a factory.
            raise TypeError("watches need the Kubernetes client, else a follower_factory")
        return Reflector(self.kube, spec, listener, as_=as_)

    # -- the watches ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watches (once; from the event loop)."""
        if self._followers:
            return
        self._loop = asyncio.get_running_loop()
        self._housekeeping = self._loop.create_task(self._release_idle_views(), name="cache")
        for role, spec in INFORMERS.items():
            listener = functools.partial(self._apply, role)
            self._followers.append(self._factory(spec, listener, None))
        for follower in self._followers:
            follower.start()

    @property
    def synced(self) -> bool:
        """True once every watch has handed over its first snapshot."""
        return self._ready.is_set()

    async def ensure(self, namespace: str = "", *, wait_seconds: float | None = None) -> None:
        """Wait until every watch's first snapshot is in (woken by the watches, no polling),
        at most `wait_seconds` (the sync timeout by default); `namespace` is the project about
        to be read. Past that, a 503 says how far the reading has gone (never a listing that
        is silently incomplete)."""
        if self._ready.is_set() or namespace in self._provisional:
            return
        self.start()
        if namespace and self.kube is not None:
            # One project is wanted (a user's listing): rather than wait for every project's
            # objects, read that one's directly, which the watches then take over.
            try:
                await asyncio.wait_for(asyncio.shield(self._ready.wait()), PROVISIONAL_SECONDS)
                return
            except TimeoutError:
                if await self._read_directly(namespace):
                    return
        try:
            await asyncio.wait_for(self._ready.wait(), wait_seconds or self.sync_timeout)
        except TimeoutError:
            missing = sorted(set(INFORMERS) - self._synced)
            with self._lock:
                listed = sum(self._listed.values())
            where = f"the services of {namespace}" if namespace else "the services"
            raise Unavailable(
                f"{where} are still being read from the cluster ({listed} objects so far; "
                f"waiting for: {', '.join(missing)}): try again in a moment",
                retry_after=2,
                listed_objects=listed,
                waiting_for=missing,
            ) from None

    async def _read_directly(self, namespace: str) -> bool:
        """Read one namespace's objects of every kind whose watch has not listed yet (as the
        platform, by label, in that namespace only): whether it could. A watch's first
        snapshot, when it comes, replaces them."""
        kinds = [(role, spec) for role, spec in INFORMERS.items() if role != "namespace"]
        try:
            found = await asyncio.gather(
                *(
                    self.kube.list(spec.kind, namespace, label_selector=spec.label_selector)
                    for _, spec in kinds
                )
            )
        except OnyxiaError as exc:
            log.warning("reading %s directly: %s", namespace, exc.detail)
            return False
        project = self._project(namespace)
        with self._lock, project.lock:
            for (role, _), items in zip(kinds, found, strict=True):
                if role in self._synced:
                    continue  # the watch has it already, and newer
                _replace(project, role, dict(self._brief(role, obj) for obj in items))
            project.changes += 1
            self._provisional.add(namespace)
        return True

    async def _release_idle_views(self) -> None:
        while True:
            await asyncio.sleep(VIEW_IDLE_SECONDS / 4)
            self.release_idle()

    async def close(self) -> None:
        """Stop every watch."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        followers, self._followers = self._followers, []
        for follower in followers:
            follower.stop()

    async def follow_all(self, wait_seconds: float | None = None) -> list[str]:
        """Every managed project's namespace, once the watches are in (for administrators)."""
        await self.ensure(wait_seconds=wait_seconds)
        with self._lock:
            return sorted(self._managed)

    def managed(self) -> list[str]:
        """The managed namespaces known now (sorted)."""
        with self._lock:
            return sorted(self._managed)

    # -- reading -------------------------------------------------------------------------------

    def summaries(self, namespace: str, *, keep: bool = True) -> list[ServiceSummary]:
        """Every service of a namespace (newest first); call `ensure` before. The view is
        kept for the next reader unless `keep` is False (a background pass over every
        project, which must not keep every project's view alive)."""
        project = self._projects.get(namespace)
        if project is None:
            return []
        view = project.view
        if keep:
            project.read_at = time.monotonic()
        if view is not None and view[0] == project.changes:
            return view[1]
        with project.lock:
            changes = project.changes
            state = project.objects
            found = [listing.summarize(state, meta) for meta in state.metas.values()]
        found.sort(key=lambda s: s.meta.created, reverse=True)
        if keep:
            project.view = (changes, found)
        return found

    def all_summaries(self) -> list[ServiceSummary]:
        """Every service of every managed project (what the culler looks at); views are not
        kept for it."""
        return [s for n in self.managed() for s in self.summaries(n, keep=False)]

    def changes(self, namespace: str) -> int:
        """How many changes a namespace has seen (-1 when none): a launch's progress looks at
        its pods again only when this moved."""
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
        """The pods of `release`, by name; call `ensure` before."""
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

    def urls(self, namespace: str, release: str) -> tuple[str, ...]:
        """The URLs of `release`'s Ingresses, by Ingress name; call `ensure` before."""
        project = self._projects.get(namespace)
        if project is None:
            return ()
        with project.lock:
            ingresses = sorted(project.objects.ingresses.items())
        return tuple(u for _, i in ingresses if i.release == release for u in i.urls)

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

    def suspicious(self, settled_before: datetime) -> set[str]:
        """The namespaces where the reconciler may have work: a record whose launch is still
        installing since before `settled_before`, or workloads of a release without a record
        (a ghost release, or a mirror deleted)."""
        found = set()
        for namespace, project in list(self._projects.items()):
            with project.lock:
                state = project.objects
                records = set(state.metas)
                stuck = any(
                    listing.installing(m) and m.events[-1].at < settled_before
                    for m in state.metas.values()
                )
                releases = {p.release for p in state.pods.values()} | {
                    c.release for c in state.controllers.values()
                }
            if stuck or releases - records - {""}:
                found.add(namespace)
        return found

    def release_idle(self, now: float | None = None) -> int:
        """Drop the computed views of projects nobody read for `VIEW_IDLE_SECONDS` (their
        objects stay: the watches keep them); how many were dropped."""
        now = time.monotonic() if now is None else now
        dropped = 0
        for project in list(self._projects.values()):
            if project.view is not None and now - project.read_at > VIEW_IDLE_SECONDS:
                project.view = None
                project.rendered = {}
                dropped += 1
        return dropped

    # -- our own writes, applied at once -------------------------------------------------------

    def observe(self, secret: KubeObject) -> None:
        """A record Secret we just wrote (created or patched): list it without waiting. Its
        mirror, written after it, has a later version, so the mirror's own event replaces this
        copy, and an older mirror's cannot."""
        meta = replace(objects.read_meta(secret), overrides={})
        record = _Record(meta, _version(secret), _deleting(secret), str(_version(secret)))
        project = self._project(meta.namespace)
        with project.lock:
            if record.version and record.version <= project.meta_versions.get(meta.release, 0):
                return
            project.set_record(record)
            project.changes += 1

    def record_source(self, namespace: str, release: str) -> int | None:
        """The resourceVersion of the record Secret that the listed copy was made from (None:
        not listed): the reconciler mirrors again a record changed behind the platform's
        back."""
        project = self._projects.get(namespace)
        if project is None:
            return None
        with project.lock:
            return project.sources.get(release)

    def mark_deleting(self, namespace: str, release: str, deleting: bool = True) -> None:
        """Show a service as being deleted (or not any more)."""
        project = self._project(namespace)
        with project.lock:
            if deleting:
                project.objects.meta_deleting.add(release)
            else:
                project.objects.meta_deleting.discard(release)
            project.changes += 1

    def forget(self, namespace: str, release: str) -> None:
        """A service we just deleted: drop it from listings without waiting (its last version
        stays known, so a late event about the deleted mirror cannot bring it back)."""
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

    def _project(self, namespace: str) -> _Project:
        project = self._projects.get(namespace)
        if project is None:
            with self._lock:
                project = self._projects.setdefault(namespace, _Project(ProjectObjects(namespace)))
        return project

    def _brief(self, role: str, obj: KubeObject) -> tuple[str, Any]:
        """The key and the compact form this cache keeps of a watched object."""
        name = _name(obj)
        if role == "record":
            meta = objects.read_mirror(obj)
            record = _Record(meta, _version(obj), _deleting(obj), objects.mirror_version(obj))
            return meta.release, record
        if role == "pod":
            return name, listing.pod_brief(obj)
        if role in ("deployment", "statefulset"):
            return f"{role}/{name}", listing.controller_brief(obj)
        return name, self._ingress_brief(obj)

    def _apply(self, role: str, change: Change) -> None:
        if role == "namespace":
            self._apply_namespaces(change)
        elif change.type == "sync":
            self._apply_page(role, change)
        else:
            for obj in change.objects:
                self._apply_one(role, change.type, obj)
        if change.type == "sync" and change.complete:
            self._synced.add(role)
            if len(self._synced) == len(INFORMERS) and self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: we are stopping
                    self._loop.call_soon_threadsafe(self._ready.set)

    def _apply_one(self, role: str, kind: str, obj: KubeObject) -> None:
        if kind == "deleted" and _namespace(obj) not in self._projects:
            return  # nothing known there (a deleted project's last objects going)
        project = self._project(_namespace(obj))
        key, brief = self._brief(role, obj)
        with project.lock:
            if role == "record":
                if kind == "deleted":
                    project.drop_record(key)
                elif brief.version > project.meta_versions.get(key, 0) or not brief.version:
                    project.set_record(brief)
                else:
                    return  # a copy we already have (our own write), or an older one
            else:
                store = _store(project.objects, role)
                if kind == "deleted":
                    store.pop(key, None)
                else:
                    store[key] = brief
            project.changes += 1

    def _apply_page(self, role: str, change: Change) -> None:
        """One page of a snapshot; the last one replaces every namespace's copy at once."""
        with self._lock:
            pending = self._pending.setdefault(role, {})
            if role not in self._synced:
                self._listed[role] = self._listed.get(role, 0) + len(change.objects)
            for obj in change.objects:
                key, brief = self._brief(role, obj)
                pending.setdefault(_namespace(obj), {})[key] = brief
            if not change.complete:
                return
            del self._pending[role]
            # Under the cache's lock up to `_synced`, so a direct read (`_read_directly`) never
            # puts its copy over the watch's once the watch has it.
            for namespace in set(self._projects) | set(pending):
                project = self._project(namespace)
                with project.lock:
                    _replace(project, role, pending.get(namespace, {}))
                    project.changes += 1
            self._synced.add(role)

    def _apply_namespaces(self, change: Change) -> None:
        with self._lock:
            if change.type == "sync":
                pending = self._pending.setdefault("namespace", {}).setdefault("", {})
                pending.update((_name(n), n) for n in change.objects if not _deleting(n))
                if not change.complete:
                    return
                managed = set(self._pending.pop("namespace")[""])
                for gone in self._managed - managed:  # deleted while the watch was away
                    self._projects.pop(gone, None)
                self._managed = managed
                return
            for namespace in change.objects:
                name = _name(namespace)
                if change.type == "deleted" or _deleting(namespace):
                    self._managed.discard(name)
                    self._projects.pop(name, None)  # nothing of a deleted project is kept
                else:
                    self._managed.add(name)


def _store(state: ProjectObjects, role: str) -> dict[str, Any]:
    if role == "pod":
        return state.pods
    if role in ("deployment", "statefulset"):
        return state.controllers
    return state.ingresses


def _replace(project: _Project, role: str, fresh: dict[str, Any]) -> None:
    """A new snapshot of a namespace's objects of one kind (called under its project's lock)."""
    if role == "record":
        _replace_records(project, fresh)
        return
    store = _store(project.objects, role)
    prefix = f"{role}/" if role in ("deployment", "statefulset") else ""
    for key in [k for k in store if k.startswith(prefix)]:
        del store[key]
    store.update(fresh)


def _replace_records(project: _Project, fresh: dict[str, _Record]) -> None:
    """A new snapshot of a namespace's records (called under the project's lock)."""
    for release in set(project.objects.metas) - set(fresh):
        project.drop_record(release)
    project.objects.meta_deleting.clear()
    for record in fresh.values():
        project.set_record(record)


async def managed_namespaces(kube: Kube) -> list[str]:
    """Every namespace the platform manages (read as the platform)."""
    found = await kube.list("Namespace", label_selector=MANAGED_SELECTOR, metadata_only=True)
    return sorted(_name(n) for n in found if not _deleting(n))
