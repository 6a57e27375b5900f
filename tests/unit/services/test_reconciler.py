"""The reconciler on fakes: interrupted launches converge once no install can still be running:
a ghost release gets a record, an unsettled release is rolled back (its record says why), a
record whose release never came is marked failed; each action audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onyxia_py.errors import OperationFailed
from onyxia_py.services import listing, objects
from onyxia_py.services.models import LaunchEvent, Phase, ServiceMeta
from onyxia_py.services.reconciler import INTERRUPTED, NEVER_INSTALLED, Mirrors, Reconciler

from ..fakes import RecordingAudit
from .platform import Platform, principal

BOUND = timedelta(minutes=5)


@pytest.fixture
async def platform(tmp_path: Path) -> Platform:
    built = Platform(tmp_path)
    await built.start()
    await built.bootstrap.ensure(built.project(), principal().identity)
    return built


def reconciler(
    platform: Platform, audit: RecordingAudit, mirrors: Mirrors | None = None
) -> Reconciler:
    return Reconciler(
        kube=platform.kube,
        helm=platform.helm,
        owners=platform.bootstrap,
        installs=platform.launcher,
        audit=audit,
        bound_seconds=BOUND.total_seconds(),
        interval_seconds=60,
        mirrors=mirrors,
    )


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def record(platform: Platform, release: str, created: datetime, failure: str = "") -> None:
    meta = ServiceMeta(
        release=release,
        namespace=platform.project().namespace,
        catalog="ide",
        chart="hello",
        version="0.1.0",
        owner="alice",
        friendly_name=release,
        share=False,
        created=created.isoformat(timespec="seconds"),
        failure=failure,
    )
    platform.kube.put(objects.meta_secret(meta))


async def test_a_ghost_release_is_adopted(platform: Platform) -> None:
    namespace = platform.project().namespace
    long_ago = datetime.now(UTC) - 2 * BOUND
    platform.helm.put_release(namespace, "ghost-1", "deployed", created=stamp(long_ago))
    audit = RecordingAudit()

    done = await reconciler(platform, audit).run_once()
    assert [(a.action, a.target) for a in done] == [("adopted", f"{namespace}/ghost-1")]
    meta = platform.meta("ghost-1")
    assert meta is not None
    assert (meta.chart, meta.version, meta.owner, meta.failure) == ("hello", "0.1.0", "alice", "")
    assert (namespace, "ghost-1") in platform.helm.releases  # a deployed release is left running
    assert audit.actions() == [("service.reconcile.adopted", f"{namespace}/ghost-1", "success")]
    assert audit.rows[0].actor == "onyxia-py"

    # Adopted once: the next pass finds nothing to do.
    assert await reconciler(platform, audit).run_once() == []


async def test_an_interrupted_install_is_rolled_back_and_says_why(platform: Platform) -> None:
    namespace = platform.project().namespace
    now = datetime.now(UTC)
    record(platform, "cut-1", now - 2 * BOUND)
    platform.helm.put_release(namespace, "cut-1", "pending-install", created=stamp(now - 2 * BOUND))
    # One still within the launch bound: an install may yet be running somewhere.
    record(platform, "young-1", now)
    platform.helm.put_release(namespace, "young-1", "pending-install", created=stamp(now))
    audit = RecordingAudit()

    done = await reconciler(platform, audit).run_once(now)
    assert [(a.action, a.target) for a in done] == [("rolled-back", f"{namespace}/cut-1")]
    assert (namespace, "cut-1") not in platform.helm.releases
    meta = platform.meta("cut-1")
    assert meta is not None  # kept, so its owner sees why
    assert meta.failure.startswith(f"{INTERRUPTED}; Helm says pending-install")
    assert meta.failure.endswith("(everything it created was removed)")
    assert (namespace, "young-1") in platform.helm.releases
    young = platform.meta("young-1")
    assert young is not None
    assert young.failure == ""
    assert audit.actions() == [("service.reconcile.rolled-back", f"{namespace}/cut-1", "success")]


async def test_a_failed_rollback_is_retried_at_the_next_pass(platform: Platform) -> None:
    namespace = platform.project().namespace
    now = datetime.now(UTC)
    record(platform, "cut-2", now - 2 * BOUND)
    platform.helm.put_release(namespace, "cut-2", "pending-upgrade", created=stamp(now - 2 * BOUND))
    platform.helm.uninstall_errors.append(OperationFailed("uninstalling cut-2: timed out"))
    audit = RecordingAudit()

    done = await reconciler(platform, audit).run_once(now)
    assert [a.action for a in done] == ["retry-later"]
    assert audit.rows[-1].outcome == "failure"
    assert (namespace, "cut-2") in platform.helm.releases

    done = await reconciler(platform, audit).run_once(now)
    assert [a.action for a in done] == ["rolled-back"]
    assert (namespace, "cut-2") not in platform.helm.releases


async def test_a_record_without_a_release_is_marked_failed(platform: Platform) -> None:
    namespace = platform.project().namespace
    now = datetime.now(UTC)
    record(platform, "orphan-1", now - 2 * BOUND)
    record(platform, "fresh-1", now - BOUND / 2)  # its install may not have started yet
    audit = RecordingAudit()

    done = await reconciler(platform, audit).run_once(now)
    assert [(a.action, a.target) for a in done] == [("marked-failed", f"{namespace}/orphan-1")]
    orphan = platform.meta("orphan-1")
    assert orphan is not None
    assert orphan.failure == NEVER_INSTALLED
    fresh = platform.meta("fresh-1")
    assert fresh is not None
    assert fresh.failure == ""
    # Marked once: a failed record is settled.
    assert await reconciler(platform, audit).run_once(now) == []
    assert len(audit.rows) == 1


async def test_an_install_running_here_is_left_alone(platform: Platform) -> None:
    platform.helm.install_outcome = "hang"
    release = await platform.launch()
    namespace = platform.project().namespace
    await platform.helm.started.wait()
    later = datetime.now(UTC) + 2 * BOUND  # past the bound, yet this process still installs it
    audit = RecordingAudit()
    assert await reconciler(platform, audit).run_once(later) == []
    assert platform.helm.releases[(namespace, release)].info.status == "pending-install"
    await platform.launcher.remove(namespace, release, platform.as_user())
    await platform.ended(release)


async def test_a_record_changed_behind_the_platforms_back_is_mirrored_again(
    platform: Platform,
) -> None:
    """The listing reads mirrors: a record Secret with no mirror, or one newer than the copy
    listed, is mirrored again; one the listing already has is left alone."""
    namespace = platform.project().namespace
    now = datetime.now(UTC)
    record(platform, "plain-1", now)  # written straight into the cluster: no mirror
    audit = RecordingAudit()
    mirrored = reconciler(platform, audit, mirrors=platform.cache)
    await platform.cache.ensure()

    done = await mirrored.run_once(now)
    assert ("mirrored", f"{namespace}/plain-1") in [(a.action, a.target) for a in done]
    mirror = platform.kube.find("ConfigMap", objects.meta_name("plain-1"), namespace)
    assert mirror is not None
    assert objects.read_mirror(mirror).friendly_name == "plain-1"
    assert "overrides" not in mirror["data"]  # never the launch values
    assert [s.meta.release for s in platform.cache.summaries(namespace)] == ["plain-1"]

    assert [a.action for a in await mirrored.run_once(now)] == []  # in step: nothing to do

    secret = platform.kube.find("Secret", objects.meta_name("plain-1"), namespace)
    assert secret is not None
    renamed = objects.meta_secret(
        ServiceMeta(**{**vars(objects.read_meta(secret)), "friendly_name": "by hand"})
    )
    platform.kube.put(renamed)  # a newer Secret than the listed copy
    done = await mirrored.run_once(now)
    assert [(a.action, a.detail) for a in done] == [
        ("mirrored", "the record changed behind the platform")
    ]
    assert platform.cache.summaries(namespace)[0].meta.friendly_name == "by hand"


async def test_a_pass_reads_what_the_cache_points_at_and_its_share_of_the_sweep() -> None:
    class Cache:
        synced = True

        async def ensure(self, namespace: str = "", *, wait_seconds: float | None = None) -> None:
            pass

        def record_source(self, namespace: str, release: str) -> int | None:
            return None

        def managed(self) -> list[str]:
            return [f"user-{n}" for n in range(10)]

        def suspicious(self, settled_before: datetime) -> set[str]:
            return {"user-7", "not-managed"}

    sweeping = Reconciler(
        kube=None,  # type: ignore[arg-type]
        helm=None,  # type: ignore[arg-type]
        owners=None,  # type: ignore[arg-type]
        installs=None,  # type: ignore[arg-type]
        audit=RecordingAudit(),
        bound_seconds=60,
        interval_seconds=30,
        mirrors=Cache(),
        sweep_seconds=100,  # 10 projects in 100 s: 3 a pass
    )
    now = datetime.now(UTC)
    assert await sweeping._due(now) == ["user-0", "user-1", "user-2", "user-7"]
    assert await sweeping._due(now) == ["user-3", "user-4", "user-5", "user-7"]
    assert await sweeping._due(now) == ["user-6", "user-7", "user-8"]
    assert await sweeping._due(now) == ["user-0", "user-1", "user-7", "user-9"]  # round again


@pytest.mark.parametrize(("helm", "failed"), [("deployed", False), ("failed", True)])
async def test_a_record_left_installing_after_its_install_ended_is_ended(
    platform: Platform, helm: str, failed: bool
) -> None:
    """The replica died after Helm finished but before it saved the next step: the record
    (which listings read) would say installing for ever. Past the bound it says it ended."""
    namespace = platform.project().namespace
    now = datetime.now(UTC)
    long_ago = now - 2 * BOUND

    def installing(release: str, at: datetime) -> None:
        record(platform, release, at)
        secret = platform.kube.find("Secret", objects.meta_name(release), namespace)
        assert secret is not None
        steps = (LaunchEvent(Phase.ACCEPTED, "", at), LaunchEvent(Phase.INSTALLING, "", at))
        meta = ServiceMeta(**{**vars(objects.read_meta(secret)), "events": steps})
        platform.kube.put(objects.meta_secret(meta))
        platform.helm.put_release(namespace, release, helm, created=stamp(at))

    installing("left-1", long_ago)
    installing("young-2", now)  # its install may still be followed somewhere: left alone

    done = await reconciler(platform, RecordingAudit()).run_once(now)
    assert [(a.action, a.target) for a in done] == [("install-ended", f"{namespace}/left-1")]
    meta = platform.meta("left-1")
    assert meta is not None
    assert meta.events[-1].phase is Phase.SCHEDULED
    assert not listing.installing(meta)
    assert bool(meta.failure) is failed
    assert await reconciler(platform, RecordingAudit()).run_once(now) == []  # once
