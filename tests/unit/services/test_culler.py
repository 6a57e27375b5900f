"""The lifetime policy: its decisions, and its passes over a fake cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onyxia_py.errors import OperationFailed
from onyxia_py.projects.objects import binding_identity
from onyxia_py.services.culler import ACTOR, Culler, decide, limit_hours
from onyxia_py.services.models import Phase, ServiceMeta
from onyxia_py.settings import ServiceSettings

from ..fakes import RecordingAudit
from .platform import Platform

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = ServiceSettings(max_running_hours=10, gpu_max_running_hours=2, warning_minutes=30)


def meta(
    hours_ago: float, *, gpus: int = 0, warned: str = "", chart: str = "jupyter"
) -> ServiceMeta:
    since = (NOW - timedelta(hours=hours_ago)).isoformat() if hours_ago >= 0 else ""
    return ServiceMeta(
        release="r",
        namespace="ns",
        catalog="ide",
        chart=chart,
        version="1",
        owner="alice",
        friendly_name="R",
        share=False,
        created="",
        running_since=since,
        gpus=gpus,
        warned_at=warned,
    )


def test_limits() -> None:
    assert limit_hours(meta(0), SETTINGS, {}) == 10
    assert limit_hours(meta(0, gpus=1), SETTINGS, {}) == 2
    assert limit_hours(meta(0, gpus=1), SETTINGS, {"jupyter": 5}) == 5


def test_decisions() -> None:
    assert decide(meta(1), NOW, SETTINGS, {}).action == "none"
    assert decide(meta(9.6), NOW, SETTINGS, {}).action == "warn"
    assert decide(meta(9.6, warned="x"), NOW, SETTINGS, {}).action == "none"
    assert decide(meta(10), NOW, SETTINGS, {}).action == "suspend"
    assert decide(meta(2.1, gpus=1), NOW, SETTINGS, {}).action == "suspend"
    assert decide(meta(-1), NOW, SETTINGS, {}).action == "none"  # suspended: not running
    never = ServiceSettings(max_running_hours=None, gpu_max_running_hours=None)
    assert decide(meta(1000), NOW, never, {}).action == "none"


def test_acting_identity() -> None:
    user = binding_identity({"subjects": [{"kind": "User", "name": "alice"}]}, "onyxia-py:lifetime")
    assert user is not None
    assert user.user == "alice"
    group = binding_identity(
        {"subjects": [{"kind": "Group", "name": "stats"}]}, "onyxia-py:lifetime"
    )
    assert group is not None
    assert group.groups == ("stats",)
    assert binding_identity({"subjects": []}, "onyxia-py:lifetime") is None


@pytest.fixture
async def platform(tmp_path: Path) -> Platform:
    built = Platform(tmp_path)
    await built.start()
    return built


def culler(platform: Platform, audit: RecordingAudit) -> Culler:
    return Culler(
        kube=platform.kube,
        services=platform.services,
        bootstrap=platform.bootstrap,
        catalogs=platform.catalogs,
        settings=SETTINGS,
        audit=audit,
    )


async def started(platform: Platform) -> tuple[str, datetime]:
    release = await platform.launch()
    assert (await platform.ended(release))[-1].phase is Phase.RUNNING
    meta = platform.meta(release)
    assert meta is not None
    return release, datetime.fromisoformat(meta.running_since)


async def test_a_pass_warns_once_then_suspends_as_the_owner(platform: Platform) -> None:
    release, since = await started(platform)
    namespace = platform.project().namespace
    target = f"{namespace}/{release}"
    audit = RecordingAudit()

    assert await culler(platform, audit).run_once(since + timedelta(hours=1)) == []
    warned_at = since + timedelta(hours=9, minutes=40)
    assert await culler(platform, audit).run_once(warned_at) == [("warn", target)]
    events = await platform.kube.list("Event", namespace)
    assert [(e["reason"], e["type"]) for e in events] == [("LifetimeEnding", "Warning")]
    assert events[0]["involvedObject"]["name"].endswith(release)
    meta = platform.meta(release)
    assert meta is not None
    assert meta.warned_at == warned_at.isoformat()
    assert await culler(platform, audit).run_once(warned_at + timedelta(minutes=5)) == []

    assert await culler(platform, audit).run_once(since + timedelta(hours=10)) == [
        ("suspend", target)
    ]
    upgraded = platform.helm.releases[(namespace, release)]
    assert upgraded.values["global"] == {"suspend": True}
    assert platform.helm.actions[-1] == ("upgrade", release, platform.as_user())
    meta = platform.meta(release)
    assert meta is not None
    assert (meta.running_since, meta.warned_at) == ("", "")
    assert audit.actions() == [("service.lifetime-suspend", target, "success")]
    assert audit.rows[0].details["owner"] == "alice"
    assert (platform.outbox.rows[-1].action, platform.outbox.rows[-1].actor) == (
        "service.suspend",
        ACTOR,
    )
    # Suspended: not running any more, so never suspended twice.
    assert await culler(platform, audit).run_once(since + timedelta(hours=30)) == []


async def test_a_failed_suspension_is_left_for_the_next_pass(platform: Platform) -> None:
    release, since = await started(platform)
    namespace = platform.project().namespace
    audit = RecordingAudit()
    platform.helm.upgrade_errors.append(OperationFailed("upgrading: the API server is slow"))
    assert await culler(platform, audit).run_once(since + timedelta(hours=11)) == []
    assert audit.rows == []
    meta = platform.meta(release)
    assert meta is not None
    assert meta.running_since != ""  # still running: the next pass tries again
    assert "global" not in platform.helm.releases[(namespace, release)].values
    again = await culler(platform, audit).run_once(since + timedelta(hours=11))
    assert again == [("suspend", f"{namespace}/{release}")]
