"""Turning pod states and controller events into launch phases."""

from __future__ import annotations

from typing import Any

from onyxia_py.services.launcher import pod_verdict
from onyxia_py.services.models import FailureReason, Phase


def pod(conditions: list[dict[str, Any]], waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "boom"}} if waiting else {"running": {}}
    return {
        "status": {
            "conditions": conditions,
            "containerStatuses": [{"name": "main", "image": "jupyter:1", "state": state}],
        }
    }


SCHEDULED = [{"type": "PodScheduled", "status": "True"}]


def test_nothing_yet() -> None:
    assert pod_verdict([], [], "r") is None


def test_scheduled_then_pulling() -> None:
    assert pod_verdict([pod(SCHEDULED)], [], "r") == (Phase.SCHEDULED, None)
    assert pod_verdict([pod(SCHEDULED, "ContainerCreating")], [], "r") == (Phase.PULLING, None)


def test_unschedulable_is_fatal_but_waiting_for_a_volume_is_not() -> None:
    insufficient = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        }
    ]
    verdict = pod_verdict([pod(insufficient)], [], "r")
    assert verdict is not None
    assert verdict[1] is not None
    assert verdict[1][0] is FailureReason.UNSCHEDULABLE
    assert "Insufficient nvidia.com/gpu" in verdict[1][1]
    volume = [{**insufficient[0], "message": "pod has unbound immediate PersistentVolumeClaims"}]
    assert pod_verdict([pod(volume)], [], "r") is None


def test_image_pull_and_crash_loop() -> None:
    pulled = pod_verdict([pod(SCHEDULED, "ImagePullBackOff")], [], "r")
    assert pulled is not None
    assert pulled[1] is not None
    assert pulled[1][0] is FailureReason.IMAGE_PULL
    crashed = pod_verdict([pod(SCHEDULED, "CrashLoopBackOff")], [], "r")
    assert crashed is not None
    assert crashed[1] is not None
    assert crashed[1][0] is FailureReason.CRASH_LOOP


def test_quota_refusal_of_this_release_only() -> None:
    event = {
        "involvedObject": {"name": "jupyter-123456-7f9c"},
        "reason": "FailedCreate",
        "message": 'pods "x" is forbidden: exceeded quota: onyxia-quota',
    }
    verdict = pod_verdict([], [event], "jupyter-123456")
    assert verdict is not None
    assert verdict[1] is not None
    assert verdict[1][0] is FailureReason.QUOTA
    assert pod_verdict([], [event], "rstudio-654321") is None
