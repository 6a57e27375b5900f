"""Turning pod briefs and controller events into launch phases, read from the watch cache."""

from __future__ import annotations

import asyncio
from typing import Any

from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeObject
from onyxia_py.services.listing import PodBrief, pod_brief
from onyxia_py.services.models import FailureReason, Phase
from onyxia_py.services.progress import pod_verdict, verdicts


def pod(conditions: list[dict[str, Any]], waiting: str | None = None, name: str = "p") -> PodBrief:
    state = {"waiting": {"reason": waiting, "message": "boom"}} if waiting else {"running": {}}
    return pod_brief(
        {
            "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": "r"}},
            "status": {
                "conditions": conditions,
                "containerStatuses": [{"name": "main", "image": "jupyter:1", "state": state}],
            },
        }
    )


SCHEDULED = [{"type": "PodScheduled", "status": "True"}]
INSUFFICIENT = [
    {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
    }
]


def test_nothing_yet() -> None:
    assert pod_verdict([], [], "r") is None
    assert pod_verdict([pod([])], [], "r") is None


def test_scheduled_then_pulling() -> None:
    assert pod_verdict([pod(SCHEDULED)], [], "r") == (Phase.SCHEDULED, None)
    assert pod_verdict([pod(SCHEDULED, "ContainerCreating")], [], "r") == (Phase.PULLING, None)
    assert pod_verdict([pod(SCHEDULED, "PodInitializing")], [], "r") == (Phase.PULLING, None)


def test_unschedulable_is_fatal_but_waiting_for_a_volume_is_not() -> None:
    verdict = pod_verdict([pod(INSUFFICIENT)], [], "r")
    assert verdict == (
        Phase.FAILED,
        (
            FailureReason.UNSCHEDULABLE,
            "no node can run it: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        ),
    )
    volume = [{**INSUFFICIENT[0], "message": "pod has unbound immediate PersistentVolumeClaims"}]
    assert pod_verdict([pod(volume)], [], "r") is None
    silent = [{k: v for k, v in INSUFFICIENT[0].items() if k != "message"}]
    assert pod_verdict([pod(silent)], [], "r") == (
        Phase.FAILED,
        (FailureReason.UNSCHEDULABLE, "no node can run it:"),
    )


def test_image_pull_and_crash_loop_in_words() -> None:
    assert pod_verdict([pod(SCHEDULED, "ImagePullBackOff")], [], "r") == (
        Phase.FAILED,
        (FailureReason.IMAGE_PULL, "cannot pull jupyter:1: boom"),
    )
    assert pod_verdict([pod(SCHEDULED, "CrashLoopBackOff")], [], "r") == (
        Phase.FAILED,
        (FailureReason.CRASH_LOOP, "container main keeps crashing"),
    )
    # A failing pod beats a healthy one beside it.
    healthy = pod(SCHEDULED, "ContainerCreating", name="a")
    verdict = pod_verdict([healthy, pod(SCHEDULED, "ErrImagePull", name="b")], [], "r")
    assert verdict is not None
    assert verdict[1] is not None
    assert verdict[1][0] is FailureReason.IMAGE_PULL


def test_an_image_pull_without_message_names_the_reason() -> None:
    brief = pod_brief(
        {
            "status": {
                "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "InvalidImageName"}}}
                ]
            }
        }
    )
    assert pod_verdict([brief], [], "r") == (
        Phase.FAILED,
        (FailureReason.IMAGE_PULL, "cannot pull the image: InvalidImageName"),
    )


def test_quota_refusal_of_this_release_only() -> None:
    event = {
        "involvedObject": {"name": "jupyter-123456-7f9c"},
        "reason": "FailedCreate",
        "message": 'pods "x" is forbidden: exceeded quota: onyxia-quota',
    }
    verdict = pod_verdict([], [event], "jupyter-123456")
    assert verdict == (Phase.FAILED, (FailureReason.QUOTA, event["message"]))
    assert pod_verdict([], [event], "rstudio-654321") is None


class FakeKube:
    """Records every list call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.events: list[KubeObject] = []

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        as_: Impersonation | None = None,
    ) -> list[KubeObject]:
        self.calls.append((kind, field_selector))
        return list(self.events)


class FakeCache:
    """A project's pods and its change counter."""

    def __init__(self) -> None:
        self.counter = 0
        self.briefs: list[PodBrief] = []
        self.reads = 0

    async def ensure(self, namespace: str) -> None:
        pass

    def changes(self, namespace: str) -> int:
        return self.counter

    def pods(self, namespace: str, release: str) -> list[PodBrief]:
        self.reads += 1
        return list(self.briefs)

    def set(self, *briefs: PodBrief) -> None:
        self.briefs = list(briefs)
        self.counter += 1


async def test_progress_reads_the_cache_and_lists_events_rarely() -> None:
    kube, cache = FakeKube(), FakeCache()
    as_user = Impersonation("alice")
    # Events every 2 s: longer than the test takes even on a loaded machine, so each verdict
    # comes from a change of the pods only.
    progress = verdicts(kube, cache, "ns", "r", as_user, tick_seconds=0.01, event_seconds=2.0)
    seen: list[Any] = []

    async def follow() -> None:
        async for verdict in progress:
            seen.append(verdict)
            if verdict[1] is not None:
                return

    started = asyncio.get_running_loop().time()
    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.05)
    reads = cache.reads
    await asyncio.sleep(0.1)
    assert cache.reads == reads  # nothing changed: the pods are not looked at again
    cache.set(pod(SCHEDULED))
    await asyncio.sleep(0.05)
    cache.set(pod(SCHEDULED, "CrashLoopBackOff"))
    await asyncio.wait_for(follower, 1)
    assert seen == [
        (Phase.SCHEDULED, None),
        (Phase.FAILED, (FailureReason.CRASH_LOOP, "container main keeps crashing")),
    ]
    # No pod is ever listed; Events at most once per event interval (2 s), however long the
    # test took on a loaded machine.
    took = asyncio.get_running_loop().time() - started
    assert kube.calls
    assert {kind for kind, _ in kube.calls} == {"Event"}
    assert all(field == "reason=FailedCreate" for _, field in kube.calls)
    assert len(kube.calls) <= 1 + int(took / 2.0), (len(kube.calls), took)


async def test_a_quota_refusal_ends_progress_without_any_pod() -> None:
    kube, cache = FakeKube(), FakeCache()
    kube.events = [
        {
            "involvedObject": {"name": "r-7f9c"},
            "message": 'pods "r-7f9c-x" is forbidden: exceeded quota: onyxia-quota',
        }
    ]
    progress = verdicts(kube, cache, "ns", "r", Impersonation("alice"), tick_seconds=0.01)
    verdict = await asyncio.wait_for(anext(progress), 1)
    assert verdict[1] is not None
    assert verdict[1][0] is FailureReason.QUOTA
