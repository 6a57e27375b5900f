"""Service listing: statuses computed from project objects, and the watch-fed cache (fakes behind
the `Follower` protocol: no cluster)."""

from __future__ import annotations

import asyncio
import threading
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
from onyxia_py.services.models import ServiceMeta

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
        "metadata": {"name": f"{release}-0", "labels": {objects.INSTANCE_LABEL: release}},
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
    helm: str | None = "deployed",
    pods: list[dict[str, Any]] | None = None,
    controllers: list[dict[str, Any]] | None = None,
) -> ProjectObjects:
    state = ProjectObjects(NS, metas={m.release: m})
    if helm is not None:
        state.releases[m.release] = {1: "superseded", 2: helm}
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
    line = summarize(state, m, NOW)
    assert (line.status, line.reason) == ("running", None)
    assert line.revision == 2
    assert line.requests == {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"}
    assert line.gpus == 1
    assert line.started == "2026-11-24T11:59:30Z"
    assert line.urls == ("https://user-alice-1.lab.example",)


def test_statuses_in_words_a_user_reads() -> None:
    m = meta()
    starting = summarize(
        state_with(
            m, pods=[pod(m.release, ready=False)], controllers=[deployment(m.release, 1, 0)]
        ),
        m,
        NOW,
    )
    assert starting.status == "starting"
    assert starting.started is None
    crashing = summarize(
        state_with(m, pods=[pod(m.release, ready=False, waiting="CrashLoopBackOff")]), m, NOW
    )
    assert (crashing.status, crashing.reason) == ("failed", "container main keeps crashing")
    assert summarize(state_with(m, helm="failed"), m, NOW).status == "failed"
    assert summarize(state_with(m, helm="pending-install"), m, NOW).status == "starting"
    assert summarize(state_with(m, helm="uninstalling"), m, NOW).status == "deleting"
    suspended = meta(running=False)
    line = summarize(
        state_with(suspended, controllers=[deployment(suspended.release, 0, 0)]), suspended, NOW
    )
    assert (line.status, line.requests) == ("suspended", {})


def test_a_service_without_release_is_starting_then_failed() -> None:
    fresh = meta(age_minutes=1)
    assert summarize(state_with(fresh, helm=None), fresh, NOW).status == "starting"
    old = meta(age_minutes=30)
    line = summarize(state_with(old, helm=None), old, NOW)
    assert line.status == "failed"
    assert line.reason is not None
    assert "release is missing" in line.reason


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
    line = summarize(state_with(m, pods=[waiting]), m, NOW)
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

    def send(self, kind: str, *objs: dict[str, Any]) -> None:
        self.listener(Change(self.spec.kind, self.spec.namespace, kind, objs))
        if kind == "sync":
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

    def role(self, kind: str, selector: str) -> FakeFollower:
        return next(
            f for f in self.made if f.spec.kind == kind and f.spec.label_selector == selector
        )

    def sync_all(self) -> None:
        for follower in self.made:
            if not follower.synced.is_set():
                follower.send("sync")


def secret_of(m: ServiceMeta, version: int) -> dict[str, Any]:
    secret = objects.meta_secret(m)
    secret["metadata"]["resourceVersion"] = str(version)
    return secret


async def owner(namespace: str) -> Impersonation | None:
    return Impersonation("alice") if namespace == NS else None


def cache_with(fakes: Fakes) -> ServiceCache:
    return ServiceCache(None, owner, follower_factory=fakes, sync_timeout_seconds=0.5)  # type: ignore[arg-type]


def test_the_cache_follows_a_project_as_its_owner_and_applies_changes() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        ensured = asyncio.create_task(cache.ensure(NS))
        await asyncio.sleep(0.02)
        assert not ensured.done()  # waits for every first snapshot
        assert {f.spec.kind for f in fakes.made} == {
            "Secret",
            "Pod",
            "Deployment",
            "StatefulSet",
            "Ingress",
        }
        assert all(f.as_ == Impersonation("alice") for f in fakes.made)
        assert fakes.role("Secret", "owner=helm").spec.metadata_only
        m = replace(meta(), created=datetime.now(UTC).isoformat())  # the cache reads the clock
        fakes.role("Secret", objects.RELEASE_LABEL).send("sync", secret_of(m, 5))
        fakes.sync_all()
        await ensured
        assert [s.meta.release for s in cache.summaries(NS)] == [m.release]
        assert cache.summaries(NS)[0].status == "starting"  # no Helm release yet

        helm = fakes.role("Secret", "owner=helm")
        helm.send(
            "added",
            {"metadata": {"labels": {"name": m.release, "version": "1", "status": "deployed"}}},
        )
        fakes.role("Pod", objects.INSTANCE_LABEL).send("added", pod(m.release))
        assert cache.summaries(NS)[0].status == "running"

        renders: list[str] = []

        def render(summary: ServiceSummary) -> str:
            renders.append(summary.meta.release)
            return summary.status

        assert [r for _, r in cache.rendered(NS, "test", render)] == ["running"]
        assert [r for _, r in cache.rendered(NS, "test", render)] == ["running"]
        assert renders == [m.release]  # rendered once while nothing changed
        fakes.role("Pod", objects.INSTANCE_LABEL).send(
            "modified", pod(m.release, ready=False, waiting="CrashLoopBackOff")
        )
        assert [r for _, r in cache.rendered(NS, "test", render)] == ["failed"]
        assert len(renders) == 2

        # An older copy of the metadata (a late event) never replaces a newer one.
        metas = fakes.role("Secret", objects.RELEASE_LABEL)
        renamed = replace(m, friendly_name="Renamed")
        cache.observe(secret_of(renamed, 9))
        metas.send("modified", secret_of(m, 7))
        assert cache.summaries(NS)[0].meta.friendly_name == "Renamed"

        cache.mark_deleting(NS, m.release)
        assert cache.summaries(NS)[0].status == "deleting"
        cache.forget(NS, m.release)
        metas.send("added", secret_of(m, 9))  # the echo of a write before the delete
        assert cache.summaries(NS) == []

        await cache.close()
        assert all(f.stopped for f in fakes.made)

    asyncio.run(scenario())


def test_the_cache_refuses_projects_without_owner_and_times_out() -> None:
    async def scenario() -> None:
        fakes = Fakes()
        cache = cache_with(fakes)
        with pytest.raises(Unavailable):
            await cache.ensure("not-a-project")
        with pytest.raises(Unavailable, match="could not be read in time"):
            await cache.ensure(NS)  # no snapshot ever comes

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
        with pytest.raises(Unavailable, match="could not be read in time"):
            await waiting.ensure(NS)

    asyncio.run(scenario())
