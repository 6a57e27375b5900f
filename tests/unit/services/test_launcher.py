"""The launcher on fakes (Kubernetes, Helm, audit): accepted then running, failures rolled back
with nothing left behind, a DELETE that stops an install, an uninstall that fails."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from onyxia_py.errors import Conflict, Invalid, OperationFailed, QuotaExceeded, Unavailable
from onyxia_py.helm import ReleaseInfo
from onyxia_py.identity import Impersonation
from onyxia_py.services import objects
from onyxia_py.services.models import FailureReason, Phase
from onyxia_py.storage import objects as storage_objects

from .platform import Platform


@pytest.fixture
async def platform(tmp_path: Path) -> Platform:
    built = Platform(tmp_path)
    await built.start()
    return built


async def test_a_launch_is_accepted_then_runs_as_the_user(platform: Platform) -> None:
    release = await platform.launch(friendly_name="My hello")
    namespace = platform.project().namespace
    # Accepted: the record and the S3 Secret exist before the install ends.
    meta = platform.meta(release)
    assert meta is not None
    assert (meta.owner, meta.friendly_name, meta.chart) == ("alice", "My hello", "hello")
    assert platform.secret(storage_objects.secret_name(release)) is not None
    assert platform.audit.actions() == [("service.launch", f"{namespace}/{release}", "accepted")]

    events = await platform.ended(release)
    assert events[0].phase is Phase.ACCEPTED
    assert events[-1].phase is Phase.RUNNING
    assert platform.helm.releases[(namespace, release)].info.status == "deployed"
    install = next(a for a in platform.helm.actions if a[0] == "install")
    assert install == ("install", release, Impersonation("alice"))
    assert platform.outbox.actions() == [("service.install", f"{namespace}/{release}", "success")]
    # The steps are on the record, for the other replicas.
    stored = platform.meta(release)
    assert stored is not None
    assert stored.events[-1].phase is Phase.RUNNING
    assert stored.failure == ""


async def test_the_audit_row_comes_first_no_row_no_launch(platform: Platform) -> None:
    platform.audit.failing = Unavailable("the database is away")
    with pytest.raises(Unavailable):
        await platform.launch()
    namespace = platform.project().namespace
    assert platform.kube.names("Secret", namespace) == set()
    assert platform.helm.actions == []


def pulling_fails(release: str, namespace: str) -> dict[str, Any]:
    """A pod of `release` whose image cannot be pulled."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{release}-0",
            "namespace": namespace,
            "labels": {objects.INSTANCE_LABEL: release},
        },
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "hello",
                    "image": "busybox:nope",
                    "state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}},
                }
            ],
        },
    }


async def test_a_failed_install_is_rolled_back_and_its_quota_released(
    platform: Platform,
) -> None:
    platform.helm.install_outcome = "hang"  # Helm waits for pods that will never be ready
    first = await platform.launch()
    namespace = platform.project().namespace
    await asyncio.wait_for(platform.helm.started.wait(), 5)
    # The launch holds the project's only CPU until it ends: another one is refused at once.
    with pytest.raises(QuotaExceeded, match=r"requests\.cpu"):
        await platform.launch()

    # Its pod cannot pull its image: the launcher stops the install and removes everything.
    platform.kube.put(pulling_fails(first, namespace))
    events = await platform.ended(first)
    assert events[-1].phase is Phase.FAILED
    assert events[-1].reason is FailureReason.IMAGE_PULL
    assert events[-1].message == (
        "cannot pull busybox:nope: not found (everything it created was removed)"
    )
    assert platform.meta(first) is None
    assert platform.secret(storage_objects.secret_name(first)) is None
    assert (namespace, first) not in platform.helm.releases
    assert not any(first in name for name in platform.kube.names("Secret", namespace))
    assert platform.kube.names("Pod", namespace) == set()
    row = platform.outbox.rows[-1]
    assert (row.action, row.outcome) == ("service.install", "failure")
    assert row.details["reason"] == "image-pull"

    platform.helm.install_outcome = "succeed"
    second = await platform.launch()  # the CPU is free again
    assert (await platform.ended(second))[-1].phase is Phase.RUNNING


async def test_a_failing_helm_install_is_rolled_back(platform: Platform) -> None:
    platform.helm.install_outcome = "fail: admission webhook denied the request"
    release = await platform.launch()
    events = await platform.ended(release)
    assert events[-1].reason is FailureReason.INSTALL
    assert "admission webhook denied the request" in events[-1].message
    assert platform.meta(release) is None
    assert (platform.project().namespace, release) not in platform.helm.releases
    assert platform.outbox.rows[-1].details["reason"] == FailureReason.INSTALL.value


async def test_a_failing_install_with_keep_on_failure_keeps_everything(
    platform: Platform,
) -> None:
    platform.helm.install_outcome = "fail: boom"
    release = await platform.launch(keep_on_failure=True)
    events = await platform.ended(release)
    assert events[-1].phase is Phase.FAILED
    assert platform.meta(release) is not None
    assert platform.helm.releases[(platform.project().namespace, release)].info.status == "failed"


class CrashingHelm:
    """An install that breaks with an exception that is not the platform's (a bug)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def __call__(self, chart: Path, **kwargs: Any) -> ReleaseInfo:
        raise self.error


async def test_an_unexpected_exception_still_ends_the_launch_with_a_reason(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.helm, "install", CrashingHelm(KeyError("values")))
    release = await platform.launch()
    events = await platform.ended(release)
    last = events[-1]
    assert last.phase is Phase.FAILED
    assert last.reason is FailureReason.INSTALL
    assert last.message.startswith("internal error (KeyError)")
    assert platform.meta(release) is None  # rolled back like any failure
    assert platform.outbox.rows[-1].outcome == "failure"


async def test_a_delete_during_the_install_stops_it(platform: Platform) -> None:
    platform.helm.install_outcome = "hang"
    release = await platform.launch()
    namespace = platform.project().namespace
    await asyncio.wait_for(platform.helm.started.wait(), 5)
    assert platform.launcher.installing(namespace, release)

    # The uninstall needs the release's Helm lock, which the install holds until it stops.
    await asyncio.wait_for(platform.launcher.remove(namespace, release, platform.as_user()), 5)
    events = await platform.ended(release)
    assert events[-1].phase is Phase.FAILED
    assert events[-1].message == "deleted before it was ready"
    assert [a[0] for a in platform.helm.actions] == ["install", "uninstall"]
    assert platform.meta(release) is None
    assert platform.secret(storage_objects.secret_name(release)) is None
    assert (namespace, release) not in platform.helm.releases
    assert platform.outbox.rows[-1].details == {"reason": "deleted"}


async def test_a_failed_uninstall_keeps_the_record_with_the_reason(platform: Platform) -> None:
    release = await platform.launch()
    await platform.ended(release)
    namespace = platform.project().namespace
    platform.helm.uninstall_errors.append(OperationFailed("uninstalling: the API server said no"))
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data",
            "namespace": namespace,
            "labels": {objects.INSTANCE_LABEL: release},
        },
    }
    platform.kube.put(claim)

    with pytest.raises(OperationFailed, match="stays listed"):
        await platform.launcher.remove(namespace, release, platform.as_user())
    meta = platform.meta(release)
    assert meta is not None
    assert meta.failure == "removal failed: uninstalling: the API server said no"
    assert (namespace, release) in platform.helm.releases
    assert platform.kube.find("PersistentVolumeClaim", "data", namespace) is not None

    # Tried again, it goes: release, record, S3 Secret and volumes.
    await platform.launcher.remove(namespace, release, platform.as_user())
    assert platform.meta(release) is None
    assert platform.secret(storage_objects.secret_name(release)) is None
    assert platform.kube.find("PersistentVolumeClaim", "data", namespace) is None


async def test_a_failed_record_creation_leaves_no_s3_secret(platform: Platform) -> None:
    platform.kube.fail(
        "create", "Secret", Unavailable("Kubernetes is away"), name_prefix=objects.META_PREFIX
    )
    with pytest.raises(Unavailable):
        await platform.launch()
    assert platform.kube.names("Secret", platform.project().namespace) == set()
    assert platform.helm.actions == []
    # Its quota reservation went with it: a launch taking the whole quota is admitted.
    release = await platform.launch()
    assert (await platform.ended(release))[-1].phase is Phase.RUNNING


async def test_refused_launches_are_audited_with_their_reason(platform: Platform) -> None:
    namespace = platform.project().namespace
    with pytest.raises(Invalid):
        await platform.launch(values={"replicas": 9})
    row = platform.outbox.rows[-1]
    assert (row.action, row.target, row.outcome) == (
        "service.launch",
        f"{namespace}/hello",
        "refused",
    )
    assert row.details["reason"] == "invalid"
    assert row.details["fields"][0]["field"] == "replicas"
    assert "9" not in str(row.details["fields"])  # the reason, never the value itself

    platform.helm.install_outcome = "hang"  # the first launch holds the only CPU
    await platform.launch(release="mine")
    with pytest.raises(Conflict):
        await platform.launch(release="mine")
    assert platform.outbox.rows[-1].target == f"{namespace}/mine"
    assert platform.outbox.rows[-1].details["reason"] == "conflict"
    with pytest.raises(QuotaExceeded) as refused:
        await platform.launch()
    row = platform.outbox.rows[-1]
    assert (row.outcome, row.details["reason"]) == ("refused", "quota-exceeded")
    assert row.details["message"] == refused.value.detail
    # Refusals change nothing, so no row precedes them in the log of changes.
    assert [a for a in platform.audit.actions() if a[2] == "refused"] == []
