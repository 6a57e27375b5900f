"""Service listing: statuses computed from project objects, and the watch-fed cache (fakes behind
the `Follower` protocol: no cluster)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onyxia_py.errors import Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.kube.watch import Change, Listener, WatchSpec
from onyxia_py.services import listing, objects
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.listing import ProjectObjects, ServiceSummary, summarize
from onyxia_py.services.models import LaunchEvent, Phase, ServiceMeta

from ..fakes import FakeKube

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
NS = "user-alice"


def meta(release: str = "jupyter-1", *, running: bool = True, age_minutes: int = 1) -> ServiceMeta:
    created = (NOW - timedelta(minutes=age_minutes)).isoformat()
    return ServiceMeta(
        release=release,
        namespace=NS,
        catalog="ide",
        chart="jupyter-python",
        version="1.0.0",
        owner="alice",
        friendly_name="Notebook",
        share=False,
        created=created,
        running_since=created if running else "",
    )


def pod(release: str, *, ready: bool = True, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "metadata": {
            "name": f"{release}-0",
            "namespace": NS,
            "labels": {objects.INSTANCE_LABEL: release},
        },
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}
                    },
                },
                {"name": "sidecar", "resources": {"requests": {"cpu": "500m"}}},
            ]
        },
        "status": {
            "startTime": "2026-11-24T11:59:30Z",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "main", "state": state}],
        },
    }


def deployment(release: str, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "metadata": {"name": release, "labels": {objects.INSTANCE_LABEL: release}},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready},
    }


def state_with(
    m: ServiceMeta,
    pods: list[dict[str, Any]] | None = None,
    controllers: list[dict[str, Any]] | None = None,
) -> ProjectObjects:
    state = ProjectObjects(NS, metas={m.release: m})
    for p in pods or []:
        brief = listing.pod_brief(p)
        state.pods[brief.name] = brief
    for c in controllers or []:
        state.controllers["deployment/" + c["metadata"]["name"]] = listing.controller_brief(c)
    return state


def test_running_with_resources_start_time_and_urls() -> None:
    m = meta()
    state = state_with(m, pods=[pod(m.release)], controllers=[deployment(m.release, 1, 1)])
    state.ingresses["web"] = listing.ingress_brief(
        {
            "metadata": {"name": "web", "labels": {objects.INSTANCE_LABEL: m.release}},
            "spec": {"rules": [{"host": "user-alice-1.lab.example"}, {"http": {}}]},
        }
    )
    line = summarize(state, m)
    assert (line.status, line.reason) == ("running", None)
    assert line.requests == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert line.gpus == 1
    assert line.started == "2026-11-24T11:59:30Z"
    assert line.urls == ("https://user-alice-1.lab.example",)


def step(phase: Phase) -> LaunchEvent:
    return LaunchEvent(phase, phase.value, NOW)


def test_statuses_in_words_a_user_reads() -> None:
    m = meta()
    starting = summarize(
        state_with(
            m, pods=[pod(m.release, ready=False)], controllers=[deployment(m.release, 1, 0)]
        ),
        m,
    )
    assert starting.status == "starting"
    assert starting.started is None
    crashing = summarize(
        state_with(m, pods=[pod(m.release, ready=False, waiting="CrashLoopBackOff")]), m
    )
    assert (crashing.status, crashing.reason) == ("failed", "container main keeps crashing")
    failed = replace(m, failure="the Helm install failed: boom")
    assert summarize(state_with(failed), failed).status == "failed"
    deleting = state_with(m, pods=[pod(m.release)])
    deleting.meta_deleting.add(m.release)
    assert summarize(deleting, m).status == "deleting"
    suspended = meta(running=False)
    line = summarize(
        state_with(suspended, controllers=[deployment(suspended.release, 0, 0)]), suspended
    )
    assert (line.status, line.requests) == ("suspended", {})


def test_a_record_whose_install_is_not_over_is_installing() -> None:
    """Helm's release Secrets are not read: the record's last launch step says it."""
    installing = replace(meta(), events=(step(Phase.ACCEPTED), step(Phase.INSTALLING)))
    line = summarize(state_with(installing), installing)
    assert (line.status, line.reason) == ("starting", "installing")
    installed = replace(installing, events=(*installing.events, step(Phase.SCHEDULED)))
    pending = summarize(
        state_with(installed, pods=[pod(installed.release, ready=False)]), installed
    )
    assert (pending.status, pending.reason) == ("starting", None)
    # A chart without workloads is up once its install is over; a record of an older version
    # or an adopted release (no steps) is judged by its objects alone.
    assert summarize(state_with(installed), installed).status == "running"
    assert summarize(state_with(meta()), meta()).status == "running"


def test_unschedulable_pods_say_what_they_wait_for() -> None:
    m = meta()
    waiting = pod(m.release, ready=False)
    waiting["status"]["conditions"].append(
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes have enough nvidia.com/gpu",
        }
    )
    line = summarize(state_with(m, pods=[waiting]), m)
    assert line.status == "starting"
    assert line.reason == "waiting for resources: 0/1 nodes have enough nvidia.com/gpu"


def test_helm_revisions_from_labels() -> None:
    secret = {"metadata": {"labels": {"name": "jupyter-1", "version": "3", "status": "deployed"}}}
    assert listing.helm_revision(secret) == ("jupyter-1", 3, "deployed")
    assert listing.helm_revision({"metadata": {"labels": {"name": "x", "version": "v"}}}) is None


@dataclass
class FakeFollower:
    spec: WatchSpec
    listener: Listener
    as_: Impersonation | None
    synced: threading.Event = field(default_factory=threading.Event)
    connected: bool = False
    stopped: bool = False

    def start(self) -> None:
        self.connected = True

    def stop(self) -> None:
        self.stopped = True

    def send(self, kind: str, *objs: dict[str, Any], complete: bool = True) -> None:
        self.listener(Change(self.spec.kind, self.spec.namespace, kind, objs, complete))
        if kind == "sync" and complete:
            self.synced.set()


class Fakes:
    def __init__(self) -> None:
        self.made: list[FakeFollower] = []

    def __call__(
        self, spec: WatchSpec, listener: Listener, as_: Impersonation | None
    ) -> FakeFollower:
        follower = FakeFollower(spec, listener, as_)
        self.made.append(follower)
        return follower

    def role(self, kind: str) -> FakeFollower:
        return next(f for f in self.made if f.spec.kind == kind)

    def sync_all(self) -> None:
        for follower in self.made:
            if not follower.synced.is_set():
                follower.send("sync")


def mirror_of(m: ServiceMeta, version: int, source: int | None = None) -> dict[str, Any]:
    secret = objects.meta_secret(m)
    secret["metadata"]["resourceVersion"] = str(version - 1 if source is None else source)
    mirror = objects.record_mirror(secret)
    mirror["metadata"]["resourceVersion"] = str(version)
    return mirror


def secret_of(m: ServiceMeta, version: int) -> dict[str, Any]:
    secret = objects.meta_secret(m)
    secret["metadata"]["resourceVersion"] = str(version)
    return secret


def namespace(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


def cache_with(fakes: Fakes) -> ServiceCache:
    return ServiceCache(None, follower_factory=fakes, sync_timeout_seconds=0.5)  # type: ignore[arg-type]


def test_the_cache_follows_every_project_with_one_watch_per_kind() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure(NS))
        await asyncio.sleep(0.02)
        assert not ensured.done()  # waits for every first snapshot
        # One watch per kind, in every namespace, as the platform: none per project, and no
        # Secret (the records are read through their ConfigMap mirrors).
        assert sorted(f.spec.kind for f in fakes.made) == [
            "ConfigMap",
            "Deployment",
            "Ingress",
            "Namespace",
            "Pod",
            "StatefulSet",
        ]
        assert all(f.spec.namespace == "" and f.as_ is None for f in fakes.made)
        m = replace(meta(), overrides={})
        other = replace(meta("jupyter-2"), namespace="user-bob", owner="bob")
        records = fakes.role("ConfigMap")
        # A snapshot in two pages: nothing is replaced before its last page.
        records.send("sync", mirror_of(m, 5), complete=False)
        assert cache.summaries(NS) == []
        records.send("sync", mirror_of(other, 6))
        fakes.role("Namespace").send("sync", namespace(NS), namespace("user-bob"))
        fakes.sync_all()
        await ensured
        assert [s.meta.release for s in cache.summaries(NS)] == [m.release]
        assert [s.meta.release for s in cache.summaries("user-bob")] == [other.release]
        assert await cache.follow_all() == [NS, "user-bob"]
        assert cache.summaries(NS)[0].status == "running"  # no workload: a chart without any

        fakes.role("Pod").send("added", pod(m.release, ready=False))
        assert cache.summaries(NS)[0].status == "starting"
        fakes.role("Pod").send("modified", pod(m.release))
        assert cache.summaries(NS)[0].status == "running"

        renders: list[str] = []

        def render(summary: ServiceSummary) -> str:
            renders.append(summary.meta.release)
            return summary.status

        assert [r for _, r in cache.rendered(NS, "test", render)] == ["running"]
        assert [r for _, r in cache.rendered(NS, "test", render)] == ["running"]
        assert renders == [m.release]  # rendered once while nothing changed
        fakes.role("Pod").send("modified", pod(m.release, ready=False, waiting="CrashLoopBackOff"))
        assert [r for _, r in cache.rendered(NS, "test", render)] == ["failed"]
        assert len(renders) == 2
        assert cache.summaries("user-bob")[0].meta.release == other.release  # untouched

        # An older copy of the record (a late event) never replaces a newer one; our own write
        # is listed at once, and its mirror's later event replaces it.
        renamed = replace(m, friendly_name="Renamed")
        cache.observe(secret_of(renamed, 9))
        assert cache.record_source(NS, m.release) == 9
        records.send("modified", mirror_of(m, 7))
        assert cache.summaries(NS)[0].meta.friendly_name == "Renamed"
        records.send("modified", mirror_of(renamed, 10, source=9))
        assert cache.summaries(NS)[0].meta.friendly_name == "Renamed"

        cache.mark_deleting(NS, m.release)
        assert cache.summaries(NS)[0].status == "deleting"
        cache.forget(NS, m.release)
        records.send("added", mirror_of(m, 10))  # the echo of a write before the delete
        assert cache.summaries(NS) == []

        # A deleted project's state goes with it, and so does one deleted while the watch
        # was away (a new snapshot without it).
        fakes.role("Namespace").send("deleted", namespace("user-bob"))
        assert cache.summaries("user-bob") == []
        assert await cache.follow_all() == [NS]
        assert cache.changes(NS) >= 0  # still known here
        fakes.role("Namespace").send("sync")
        assert cache.changes(NS) == -1  # nothing of it kept
        assert await cache.follow_all() == []

        await cache.close()
        assert all(f.stopped for f in fakes.made)

    asyncio.run(scenario())


def test_a_new_snapshot_replaces_every_namespace_copy_of_its_kind() -> None:
    """After a relist (a watch too old to resume), what is gone from the cluster is gone here,
    in every namespace, and the other kinds are untouched."""

    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure())
        await asyncio.sleep(0)
        a, b = meta("jupyter-a"), replace(meta("jupyter-b"), namespace="user-bob")
        fakes.role("ConfigMap").send("sync", mirror_of(a, 3), mirror_of(b, 4))
        fakes.role("Pod").send("sync", pod(a.release, ready=False))
        fakes.sync_all()
        await ensured
        assert cache.summaries(NS)[0].status == "starting"
        fakes.role("Pod").send("sync")  # a relist: no pod any more
        assert cache.summaries(NS)[0].status == "running"
        fakes.role("ConfigMap").send("sync", mirror_of(a, 5))  # b's record deleted meanwhile
        assert cache.summaries("user-bob") == []
        assert [s.meta.release for s in cache.summaries(NS)] == [a.release]

    asyncio.run(scenario())


def test_the_cache_times_out_when_a_watch_never_lists() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure(NS))
        await asyncio.sleep(0)
        for follower in fakes.made:
            if follower.spec.kind != "Ingress":
                follower.send("sync")
        with pytest.raises(Unavailable, match="waiting for: ingress"):
            await ensured

    asyncio.run(scenario())


def test_first_snapshots_from_watch_threads_wake_the_wait_and_a_silent_one_times_out() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure(NS))
        await asyncio.sleep(0.02)
        # The snapshots arrive on another thread, as a Reflector's do.
        syncing = threading.Thread(target=fakes.sync_all)
        syncing.start()
        await asyncio.wait_for(ensured, 0.4)  # woken well before the 0.5 s timeout
        syncing.join()

        silent = Fakes()
        waiting = cache_with(silent)
        with pytest.raises(Unavailable, match="still being read"):
            await waiting.ensure(NS)

    asyncio.run(scenario())


def test_idle_views_are_released_and_computed_again() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure())
        await asyncio.sleep(0)
        fakes.role("ConfigMap").send("sync", mirror_of(meta(), 3))
        fakes.role("Namespace").send("sync", namespace(NS))
        fakes.sync_all()
        await ensured
        read_at = time.monotonic()
        first = cache.summaries(NS)
        assert cache.release_idle() == 0  # just read
        await asyncio.sleep(0.05)
        assert cache.all_summaries() == first  # a background pass: it keeps no view alive
        assert cache.release_idle(read_at + 600.03) == 1  # idle since the user's read
        again = cache.summaries(NS)
        assert again is not first
        assert again == first

    asyncio.run(scenario())


def test_one_project_is_read_directly_while_the_watches_are_still_listing() -> None:
    """A cold start with thousands of projects: a user's listing does not wait for every
    project's objects; the watch's snapshot takes over once it comes."""

    async def scenario() -> None:
        kube = FakeKube()
        m = meta()
        stored = kube.put(objects.meta_secret(m))
        kube.put(objects.record_mirror(stored))
        kube.put({"kind": "Pod", **pod(m.release, ready=False)})
        fakes = Fakes()
        cache = ServiceCache(kube, follower_factory=fakes, sync_timeout_seconds=5)
        started = time.monotonic()
        await cache.ensure(NS)  # no watch has listed anything
        assert time.monotonic() - started < 2
        assert not cache.synced
        [line] = cache.summaries(NS)
        assert (line.meta.release, line.status) == (m.release, "starting")
        assert {call[1] for call in kube.calls} >= {"ConfigMap", "Pod", "Ingress"}
        assert all(call[4] is None for call in kube.calls)  # as the platform, never a Secret
        assert "Secret" not in {call[1] for call in kube.calls}

        # The watches' snapshots come: theirs replace the direct read.
        mirror = kube.find("ConfigMap", objects.meta_name(m.release), NS)
        assert mirror is not None
        fakes.role("ConfigMap").send("sync", mirror)
        fakes.role("Pod").send("sync", pod(m.release))
        fakes.sync_all()
        await asyncio.sleep(0)  # the watches wake the loop
        assert cache.synced
        assert cache.summaries(NS)[0].status == "running"

        with pytest.raises(Unavailable, match="still being read"):
            await cache_with(Fakes()).ensure()  # every project: no shortcut

    asyncio.run(scenario())
