"""Services after their launch, on fakes: details, suspend and resume, rename and share, delete,
each change made as the user and audited; concurrent record changes all survive."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from onyxia_py.errors import Conflict, Forbidden, Invalid, NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.projects.core import group_project
from onyxia_py.projects.models import Project
from onyxia_py.services import objects
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.services.lifecycle import UPDATE_ATTEMPTS, update_meta
from onyxia_py.services.models import Phase, ServiceMeta
from onyxia_py.storage import objects as storage_objects

from .platform import PROJECTS, Platform, principal


@pytest.fixture
async def platform(tmp_path: Path) -> Platform:
    built = Platform(tmp_path)
    await built.start()
    return built


async def running(platform: Platform, **spec: Any) -> str:
    release = await platform.launch(**spec)
    assert (await platform.ended(release))[-1].phase is Phase.RUNNING
    return release


def stats() -> Project:
    project = group_project("stats", PROJECTS)
    assert project is not None
    return project


async def test_suspend_then_resume(platform: Platform) -> None:
    release = await running(platform, values={"message": "hi"})
    namespace = platform.project().namespace
    alice = principal()

    await platform.services.set_suspended(alice, platform.project(), release, True)
    upgraded = platform.helm.releases[(namespace, release)]
    assert upgraded.info.revision == 2
    assert upgraded.values["global"] == {"suspend": True}
    assert upgraded.values["message"] == "hi"  # the launch's values are kept
    assert platform.helm.actions[-1] == ("upgrade", release, Impersonation("alice"))
    meta = platform.meta(release)
    assert meta is not None
    assert meta.running_since == ""  # not running: the lifetime policy leaves it alone
    detail = await platform.services.detail(alice, platform.project(), release)
    assert detail.suspended
    assert (detail.status, detail.revision) == ("deployed", 2)

    await platform.services.set_suspended(alice, platform.project(), release, False)
    resumed = platform.helm.releases[(namespace, release)]
    assert resumed.values["global"] == {"suspend": False}
    meta = platform.meta(release)
    assert meta is not None
    assert datetime.fromisoformat(meta.running_since)  # the running time starts again
    target = f"{namespace}/{release}"
    assert platform.outbox.actions()[-2:] == [
        ("service.suspend", target, "success"),
        ("service.resume", target, "success"),
    ]
    assert {r.actor for r in platform.outbox.rows[-2:]} == {"alice"}


async def test_rename_and_share_are_recorded_and_audited(platform: Platform) -> None:
    group, alice = stats(), principal(groups=("stats",))
    accepted = await platform.launcher.launch(
        alice, group, LaunchSpec("ide", "hello", None, {}, friendly_name="Mine")
    )
    release = accepted.release
    # Not shared: another member does not see it.
    bob = principal("bob", groups=("stats",))
    with pytest.raises(NotFound):
        await platform.services.meta(bob, group, release)

    changed = await platform.services.change(
        alice, group, release, friendly_name="Ours", share=True
    )
    assert (changed.friendly_name, changed.share) == ("Ours", True)
    stored = objects.read_meta(
        await platform.kube.get("Secret", objects.meta_name(release), group.namespace)
    )
    assert (stored.friendly_name, stored.share) == ("Ours", True)
    row = platform.outbox.rows[-1]
    assert (row.action, row.target, row.actor) == (
        "service.update",
        f"{group.namespace}/{release}",
        "alice",
    )
    assert row.details == {"friendly_name": "Ours", "share": True}

    # Shared: bob sees it, but only its owner changes or suspends it.
    meta, as_bob = await platform.services.meta(bob, group, release)
    assert meta.owner == "alice"
    assert as_bob.groups == ("stats",)
    with pytest.raises(Forbidden):
        await platform.services.change(bob, group, release, friendly_name="Bob's", share=None)
    with pytest.raises(Forbidden):
        await platform.services.set_suspended(bob, group, release, True)
    assert (
        objects.read_meta(
            await platform.kube.get("Secret", objects.meta_name(release), group.namespace)
        ).friendly_name
        == "Ours"
    )


async def test_personal_services_cannot_be_shared(platform: Platform) -> None:
    release = await running(platform)
    with pytest.raises(Invalid):
        await platform.services.change(
            principal(), platform.project(), release, friendly_name=None, share=True
        )
    meta = platform.meta(release)
    assert meta is not None
    assert not meta.share
    assert [r.action for r in platform.outbox.rows] == ["service.install"]


async def test_delete_removes_everything_and_only_the_owner_sees_it(platform: Platform) -> None:
    release = await running(platform)
    namespace = platform.project().namespace
    with pytest.raises(NotFound):  # bob's project is not alice's: no service there
        await platform.services.meta(principal("bob"), platform.project("bob"), release)

    _, as_user = await platform.services.meta(principal(), platform.project(), release)
    await platform.launcher.remove(namespace, release, as_user)
    assert platform.meta(release) is None
    assert platform.secret(storage_objects.secret_name(release)) is None
    assert (namespace, release) not in platform.helm.releases
    assert platform.kube.names("Secret", namespace) == set()
    with pytest.raises(NotFound):
        await platform.services.meta(principal(), platform.project(), release)
    deletes = [c for c in platform.kube.calls if c[0] == "delete"]
    assert {c[3] for c in deletes} == {
        objects.meta_name(release),
        storage_objects.secret_name(release),
        f"sh.helm.release.v1.{release}.v1",
    }
    assert all(c[4] == Impersonation("alice") for c in deletes)  # as the user, RBAC decides


async def test_concurrent_changes_of_a_record_all_survive(platform: Platform) -> None:
    release = await running(platform)
    namespace = platform.project().namespace
    raced = False

    def rename(current: ServiceMeta) -> ServiceMeta:
        nonlocal raced
        if not raced:  # another writer (the lifetime policy's warning) gets in first
            raced = True
            platform.kube.put(objects.meta_secret(replace(current, warned_at="2026-12-01")))
        return replace(current, friendly_name="renamed")

    await update_meta(platform.kube, namespace, release, rename, platform.as_user())
    meta = platform.meta(release)
    assert meta is not None
    assert (meta.friendly_name, meta.warned_at) == ("renamed", "2026-12-01")


async def test_a_record_changed_too_often_is_refused(platform: Platform) -> None:
    release = await running(platform)
    platform.kube.fail("patch", "Secret", Conflict("modified"), times=UPDATE_ATTEMPTS)
    with pytest.raises(Conflict, match="too often"):
        await platform.services.change(
            principal(), platform.project(), release, friendly_name="never", share=None
        )
    meta = platform.meta(release)
    assert meta is not None
    assert meta.friendly_name == "hello"
    assert platform.outbox.rows[-1].action == "service.install"  # no row for what did not happen
