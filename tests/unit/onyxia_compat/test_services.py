"""Our services become Onyxia's `Service` as the Onyxia web reads it, and its state machine
(failed / starting / suspended / running) shows what our listing says."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from onyxia_py.errors import Invalid
from onyxia_py.onyxia_compat.models import CreateServiceIn, ServiceOut, ServicesOut
from onyxia_py.onyxia_compat.services import (
    epoch_ms,
    flattened,
    helm_status,
    service_out,
    suspend_or_resume,
)
from onyxia_py.services import listing, objects
from onyxia_py.services.listing import ControllerBrief, ProjectObjects
from onyxia_py.services.models import LaunchEvent, Phase, ServiceMeta
from onyxia_py.services.tracker import Launch

from ..services.platform import Platform, principal

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
META = ServiceMeta(
    release="jupyter-123456",
    namespace="user-alice",
    catalog="ide",
    chart="jupyter",
    version="2.0.0",
    owner="alice",
    friendly_name="my lab",
    share=False,
    created="2026-12-03T07:59:00+00:00",
    overrides={
        "resources": {"requests": {"cpu": "100m"}},
        "security": {"password": "s3cret"},
        "s3": {"AWS_SECRET_ACCESS_KEY": "sk"},
    },
    running_since="2026-12-03T07:59:00+00:00",
)


def pod(*, ready: bool, deleting: bool = False, waiting: str | None = None) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    metadata: dict[str, Any] = {
        "name": "jupyter-123456-0" if not deleting else "jupyter-123456-old",
        "labels": {objects.INSTANCE_LABEL: META.release},
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T08:00:00Z"
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "jupyter"}]},
        "status": {
            "phase": "Running" if ready else "Pending",
            "startTime": "2026-12-03T07:59:30Z",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "jupyter", "ready": ready, "state": state}],
        },
    }


def web_state(service: ServiceOut) -> str:
    """The Onyxia web's state of a service (serviceManagement selectors)."""
    if service.status == "failed":
        return "failed"
    if service.status == "pending-install":
        return "starting"
    if service.suspended:
        return "suspended" if not service.tasks else "suspending"
    first = service.tasks[0].containers if service.tasks else []
    return "running" if first and all(c.ready for c in first) else "starting"


def line(
    *,
    meta: ServiceMeta = META,
    revision: int = 1,
    pods: tuple[dict[str, Any], ...] = (),
    replicas: int = 1,
    launch: Launch | None = None,
) -> ServiceOut:
    # The cache holds the record's mirror, without the launch values; those come beside it.
    mirrored = replace(meta, overrides={})
    state = ProjectObjects(namespace=meta.namespace, metas={meta.release: mirrored})
    briefs = [listing.pod_brief(p) for p in pods]
    state.pods = {b.name: b for b in briefs}
    ready = sum(1 for b in briefs if b.ready and not b.terminating)
    controller = ControllerBrief(meta.release, replicas, min(ready, replicas))
    state.controllers = {"statefulset/jupyter-123456": controller}
    summary = listing.summarize(state, mirrored)
    return service_out(
        summary,
        launch,
        pods=briefs,
        controllers=[("StatefulSet", "jupyter-123456", controller)],
        suspendable=True,
        launch_values=meta.overrides,
        revision=revision,
        app_version="4.4",
        notes="Open it",
    )


def test_a_running_service_field_for_field() -> None:
    out = line(pods=(pod(ready=True),))
    assert web_state(out) == "running"
    body = out.model_dump(by_alias=True)
    assert body["id"] == body["name"] == "jupyter-123456"
    assert body["subtitle"] == "jupyter"
    assert body["chart"] == "jupyter-2.0.0"
    assert body["appVersion"] == "4.4"
    assert body["status"] == "deployed"
    assert body["revision"] == "1"
    assert body["startedAt"] == epoch_ms(META.running_since) > 0
    assert body["catalogId"] == "ide"
    assert (body["owner"], body["friendlyName"], body["share"]) == ("alice", "my lab", False)
    assert body["tasks"] == [
        {
            "id": "jupyter-123456-0",
            "status": {"status": "Running", "reason": None},
            "containers": [{"name": "jupyter", "ready": True}],
        }
    ]
    assert body["controllers"] == [
        {
            "name": "jupyter-123456",
            "kind": "StatefulSet",
            "healthy": True,
            "details": {"desired": 1, "ready": 1},
        }
    ]
    assert body["postInstallInstructions"] == "Open it"
    assert (body["suspendable"], body["suspended"], body["instances"]) == (True, False, 1)
    # The user's values, flattened: the web reads the service's password there to show it (as
    # in Onyxia), while keys, tokens and secrets stay masked as in our own API.
    assert body["env"] == {
        "resources.requests.cpu": "100m",
        "security.password": "s3cret",
        "s3.AWS_SECRET_ACCESS_KEY": "********",
    }


def test_no_helm_release_yet_is_pending_install_never_missing() -> None:
    steps = (LaunchEvent(Phase.ACCEPTED, "accepted", NOW), LaunchEvent(Phase.INSTALLING, "", NOW))
    out = line(meta=replace(META, events=steps), revision=0)
    assert out.status == "pending-install"
    assert out.revision == "0"
    assert web_state(out) == "starting"


def test_a_launch_followed_here_is_pending_install_until_it_ends() -> None:
    launch = Launch(META.release, META.namespace, "alice")
    launch.events.append(LaunchEvent(Phase.PULLING, "pulling", NOW))
    # Helm has deployed and the pod is ready, but our launch has not said running yet.
    out = line(pods=(pod(ready=True),), launch=launch)
    assert out.status == "pending-install"
    assert web_state(out) == "starting"


def test_pods_not_ready_are_starting() -> None:
    out = line(pods=(pod(ready=False, waiting="ContainerCreating"),))
    assert out.status == "deployed"
    assert out.tasks[0].status.reason == "ContainerCreating"
    assert web_state(out) == "starting"
    assert not out.controllers[0].healthy


@pytest.mark.parametrize("waiting", ["CrashLoopBackOff", "ImagePullBackOff"])
def test_a_broken_container_is_failed_for_the_web_though_helm_deployed(waiting: str) -> None:
    out = line(pods=(pod(ready=False, waiting=waiting),))
    assert out.status == "failed"
    assert web_state(out) == "failed"


def test_a_recorded_failure_is_failed() -> None:
    failed = ServiceMeta(**{**vars(META), "failure": "quota exceeded"})
    assert web_state(line(meta=failed)) == "failed"


def test_suspended_then_suspending_while_pods_go() -> None:
    asleep = ServiceMeta(**{**vars(META), "running_since": ""})
    out = line(meta=asleep, replicas=0)
    assert out.suspended
    assert web_state(out) == "suspended"
    going = line(meta=asleep, replicas=0, pods=(pod(ready=True, deleting=True),))
    assert web_state(going) == "suspending"


def test_live_pods_come_first() -> None:
    out = line(pods=(pod(ready=True, deleting=True), pod(ready=True)))
    assert [t.id for t in out.tasks] == ["jupyter-123456-0", "jupyter-123456-old"]


@pytest.mark.parametrize(
    ("status", "reason", "revision", "expected"),
    [
        (listing.STARTING, "installing", 0, "pending-install"),
        (listing.STARTING, "installing", 1, "pending-install"),
        (listing.STARTING, "scheduled", 1, "pending-install"),
        (listing.STARTING, "upgrading", 2, "pending-upgrade"),
        (listing.STARTING, None, 1, "deployed"),
        (listing.RUNNING, None, 1, "deployed"),
        (listing.SUSPENDED, None, 2, "deployed"),
        (listing.FAILED, "keeps crashing", 1, "failed"),
        (listing.DELETING, None, 1, "uninstalling"),
    ],
)
def test_helm_status(status: str, reason: str | None, revision: int, expected: str) -> None:
    assert helm_status(status, reason, revision) == expected


def test_flattened_values() -> None:
    assert flattened({"a": {"b": {"c": 1}, "d": "x"}, "e": True, "f": [1, 2], "g": {}}) == {
        "a.b.c": "1",
        "a.d": "x",
        "e": "true",
        "f": "[1, 2]",
        "g": "{}",
    }
    assert flattened({}) == {}


def test_epoch_ms() -> None:
    assert epoch_ms("1970-01-01T00:00:01Z") == 1000
    assert epoch_ms((NOW + timedelta(seconds=1)).isoformat()) - epoch_ms(NOW.isoformat()) == 1000
    assert epoch_ms("") == 0


def test_create_service_dto_as_the_web_sends_it() -> None:
    body = CreateServiceIn.model_validate(
        {
            "catalogId": "ide",
            "packageName": "jupyter",
            "packageVersion": "2.0.0",
            "name": "jupyter-123456",
            "friendlyName": "lab",
            "share": False,
            "options": {"global": {"suspend": False}},
            "dryRun": True,
        }
    )
    assert (body.catalog_id, body.package_name, body.name, body.dry_run) == (
        "ide",
        "jupyter",
        "jupyter-123456",
        True,
    )
    assert CreateServiceIn.model_validate({"packageName": "x"}).catalog_id == "internal"


def test_services_answer_has_empty_groups() -> None:
    assert ServicesOut(apps=[]).model_dump(by_alias=True) == {"apps": [], "groups": []}


@pytest.mark.parametrize("name", ["Jupyter", "-x", "x-", "a_b", "x" * 54, ""])
def test_a_chosen_release_name_must_be_a_dns_label(name: str) -> None:
    with pytest.raises(Invalid) as refused:
        objects.check_release_name(name)
    assert refused.value.errors[0].field == "name"


def test_a_good_chosen_release_name() -> None:
    objects.check_release_name("jupyter-python-123456")


async def test_suspending_a_chart_without_global_suspend_is_a_400(tmp_path: Path) -> None:
    platform = Platform(tmp_path)
    await platform.start()
    release = await platform.launch()  # the hello chart has no global.suspend
    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/my-lab/app/suspend",
            "headers": [],
            "query_string": b"",
        }
    )
    answer = await suspend_or_resume(
        request, platform.project(), principal(), platform.services, release, True
    )
    assert answer.status_code == 400
    body = json.loads(bytes(answer.body))
    assert "global.suspend" in body["detail"]
    assert body["errors"] == []
    assert not [a for a in platform.helm.actions if a[0] == "upgrade"]  # nothing was changed
