"""Launch progress from the watch cache: a release's pods (as the cache's briefs) and the
controllers' quota refusals become phases, or a failure that waiting will not cure.

No pod is listed: the cache's watches keep the pods current, and its change counter, read in
memory every `TICK_SECONDS`, says when to look again. Refusals to create pods (`FailedCreate`
Events, e.g. "exceeded quota") are not watched: they are listed, at most every
`EVENT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Protocol

from onyxia_py.errors import OnyxiaError
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeObject
from onyxia_py.services.listing import PodBrief
from onyxia_py.services.models import FailureReason, Phase

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
EVENT_SECONDS = 2.0
_IMAGE_PULL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

Verdict = tuple[Phase, tuple[FailureReason, str] | None]


class EventLister(Protocol):
    """Lists Events (the Kubernetes client); unit tests put fakes behind this."""

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        as_: Impersonation | None = None,
    ) -> list[KubeObject]: ...


class PodSource(Protocol):
    """The pods of followed projects (the `ServiceCache`)."""

    async def ensure(self, namespace: str) -> None: ...

    def changes(self, namespace: str) -> int: ...

    def pods(self, namespace: str, release: str) -> list[PodBrief]: ...


async def verdicts(
    kube: EventLister,
    cache: PodSource,
    namespace: str,
    release: str,
    as_user: Impersonation,
    *,
    tick_seconds: float = TICK_SECONDS,
    event_seconds: float = EVENT_SECONDS,
) -> AsyncGenerator[Verdict, None]:
    """Each new verdict on the release's pods, as they change (never ends by itself)."""
    events: list[KubeObject] = []
    listed_at = -event_seconds
    seen: int | None = None
    while True:
        await asyncio.sleep(tick_seconds)
        fresh = False
        if time.monotonic() - listed_at >= event_seconds:
            listed_at = time.monotonic()
            try:
                # Only controllers' refusals matter here (quota): not every event of the project.
                events = await kube.list(
                    "Event", namespace, field_selector="reason=FailedCreate", as_=as_user
                )
                fresh = True
            except OnyxiaError as exc:
                log.warning("watching %s: %s", release, exc.detail)
        try:
            await cache.ensure(namespace)
        except OnyxiaError as exc:
            log.warning("watching %s: %s", release, exc.detail)
            continue
        changes = cache.changes(namespace)
        if changes == seen and not fresh:
            continue
        seen = changes
        verdict = pod_verdict(cache.pods(namespace, release), events, release)
        if verdict is not None:
            yield verdict


def pod_verdict(pods: list[PodBrief], events: list[KubeObject], release: str) -> Verdict | None:
    """The phase the pods show, or a failure that waiting will not cure."""
    for event in events:
        involved = (event.get("involvedObject") or {}).get("name", "")
        message = str(event.get("message") or "")
        if involved.startswith(release) and "exceeded quota" in message:
            return Phase.FAILED, (FailureReason.QUOTA, message)
    phase: Phase | None = None
    for pod in pods:
        unschedulable = pod.unschedulable
        # Waiting for a volume to be provisioned is normal, not a dead end.
        if unschedulable is not None and "PersistentVolumeClaim" not in unschedulable:
            return Phase.FAILED, (
                FailureReason.UNSCHEDULABLE,
                f"no node can run it: {unschedulable}".strip(),
            )
        if pod.scheduled:
            phase = phase or Phase.SCHEDULED
        for waiting in pod.waiting:
            if waiting.reason in _IMAGE_PULL:
                detail = waiting.reason if waiting.message is None else waiting.message
                return Phase.FAILED, (
                    FailureReason.IMAGE_PULL,
                    f"cannot pull {waiting.image}: {detail}",
                )
            if waiting.reason == "CrashLoopBackOff":
                return Phase.FAILED, (
                    FailureReason.CRASH_LOOP,
                    f"container {waiting.container} keeps crashing",
                )
            if waiting.reason in ("ContainerCreating", "PodInitializing"):
                phase = Phase.PULLING
    return (phase, None) if phase else None
