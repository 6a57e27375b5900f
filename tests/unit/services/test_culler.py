"""The lifetime policy's decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onyxia_py.projects.objects import binding_identity
from onyxia_py.services.culler import decide, limit_hours
from onyxia_py.services.models import ServiceMeta
from onyxia_py.settings import ServiceSettings

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
