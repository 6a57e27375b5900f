"""Services (Helm releases launched by users) and the phases of a launch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    """Where a launch is; `running` and `failed` end it."""

    ACCEPTED = "accepted"
    INSTALLING = "installing"
    SCHEDULED = "scheduled"
    PULLING = "pulling-image"
    RUNNING = "running"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """True for the phases a launch ends in."""
        return self in (Phase.RUNNING, Phase.FAILED)


class FailureReason(StrEnum):
    """Why a launch failed, in words a user can act on."""

    QUOTA = "quota"
    UNSCHEDULABLE = "unschedulable"
    IMAGE_PULL = "image-pull"
    CRASH_LOOP = "crash-loop"
    TIMEOUT = "timeout"
    INSTALL = "install-failed"


@dataclass(frozen=True)
class LaunchEvent:
    """One step of a launch, as streamed to the user."""

    phase: Phase
    message: str
    at: datetime
    reason: FailureReason | None = None


@dataclass(frozen=True)
class ServiceMeta:
    """What the platform records about a release, beside Helm (conventions section 5)."""

    release: str
    namespace: str
    catalog: str
    chart: str
    version: str
    owner: str
    friendly_name: str
    share: bool
    created: str
    # Only what the user changed at launch: enough to launch the same thing again.
    overrides: dict[str, Any] = field(default_factory=dict)
    # When it last started running ("" while suspended), and the GPUs it holds.
    running_since: str = ""
    gpus: int = 0
    warned_at: str = ""
    # Why the service failed when its launch or removal could not finish ("" otherwise): kept
    # on the record so the listing says it, whichever replica or process looks.
    failure: str = ""
    # The launch's steps so far, written by the replica that installs it: any replica can
    # stream them (at most MAX_RECORDED_EVENTS, the last ones).
    events: tuple[LaunchEvent, ...] = ()
    # When the chart copied the launch's S3 credentials into its own objects (values that
    # Onyxia charts turn into their own Secret): they stop working then, since the platform
    # renews only its own Secret ("" when the chart reads that one, or has no S3).
    s3_copied_until: str = ""


MAX_RECORDED_EVENTS = 12
