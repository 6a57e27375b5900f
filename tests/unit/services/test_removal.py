"""What the Onyxia API needed moved into or added to the domain, on fakes: deleting one service
or all of mine (owner only, audited), a launch under a chosen release name, whether a chart
reads `global.suspend`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from onyxia_py.errors import Conflict, Forbidden, Invalid
from onyxia_py.projects.core import group_project
from onyxia_py.projects.models import Project
from onyxia_py.services import removal
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.services.models import Phase

from .platform import PROJECTS, Platform, principal


@pytest.fixture
async def platform(tmp_path: Path) -> Platform:
    built = Platform(tmp_path)
    await built.start()
    return built


def stats() -> Project:
    project = group_project("stats", PROJECTS)
    assert project is not None
    return project


async def test_a_launch_under_a_chosen_name_then_the_name_is_taken(platform: Platform) -> None:
    release = await platform.launch(release="hello-web-1")
    assert release == "hello-web-1"
    assert (await platform.ended(release))[-1].phase is Phase.RUNNING
    with pytest.raises(Conflict):
        await platform.launch(release="hello-web-1")
    with pytest.raises(Invalid):
        await platform.launch(release="Hello_Web")


async def test_suspendable_is_whether_the_chart_reads_global_suspend(platform: Platform) -> None:
    plain = await platform.launch()
    meta = platform.meta(plain)
    assert meta is not None
    assert not await platform.services.suspendable(meta)  # hello has no global.suspend
    # Values of a chart without a schema may carry it (Onyxia's rule: the values have the key).
    assert await platform.services.suspendable(
        replace(meta, overrides={"global": {"suspend": False}})
    )
    assert not await platform.services.suspendable(replace(meta, version="9.9.9"))


async def test_delete_one_of_mine_is_audited_and_anothers_is_forbidden(
    platform: Platform,
) -> None:
    group = stats()
    alice, carol = principal("alice", ("stats",)), principal("carol", ("stats",))
    theirs = (await platform.launcher.launch(alice, group, _spec(share=True))).release
    meta, as_carol = await platform.services.meta(carol, group, theirs)
    with pytest.raises(Forbidden):
        await removal.delete_service(platform.launcher, carol, meta, as_carol)
    meta, as_alice = await platform.services.meta(alice, group, theirs)
    await removal.delete_service(platform.launcher, alice, meta, as_alice)
    assert platform.kube.find("Secret", f"sh.onyxia.release.v1.{theirs}", group.namespace) is None
    assert [r.target for r in platform.outbox.rows if r.action == "service.delete"] == [
        f"{group.namespace}/{theirs}"
    ]


async def test_delete_owned_leaves_the_shared_ones_of_others(platform: Platform) -> None:
    group = stats()
    alice, carol = principal("alice", ("stats",)), principal("carol", ("stats",))
    mine = [(await platform.launcher.launch(alice, group, _spec())).release for _ in range(2)]
    shared = (await platform.launcher.launch(carol, group, _spec(share=True))).release
    assert await removal.delete_owned(platform.launcher, alice, group) == sorted(mine)
    await platform.cache.ensure(group.namespace)
    left = [s.meta.release for s in platform.cache.summaries(group.namespace)]
    assert left == [shared]


def _spec(*, share: bool = False) -> LaunchSpec:
    return LaunchSpec("ide", "hello", None, {}, share=share)
