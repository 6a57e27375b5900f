"""Onyxia's service routes against the real components (the stack of test_onyxia_compat: the
real OpenID Provider, chart repository and API server, whose simulated node runs the pods).
Launches, changes and deletes made through Onyxia's API show in ours, and the reverse; every
answer is validated by the model written from Onyxia's API."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from onyxia_py.onyxia_compat.models import InstalledOut, ServiceOut, ServicesOut

from .oidc_stack import Stack
from .test_onyxia_compat import alice, get, onyxia, problem, repo, s, tag

__all__ = ["alice", "onyxia", "repo", "s", "tag"]  # the shared module fixtures

INSTALLED = TypeAdapter(list[InstalledOut])
SMALL = {"resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}}


def call(
    s: Stack,
    method: str,
    route: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    **params: str,
) -> httpx.Response:
    return httpx.request(
        method, f"{s.url}/api{route}", headers=headers, json=body, params=params, timeout=60
    )


def put_app(
    s: Stack, headers: dict[str, str], name: str, options: dict[str, Any] | None = None, **more: Any
) -> httpx.Response:
    body = {
        "catalogId": "ide",
        "packageName": "jupyter-lite",
        "packageVersion": "2.0.0",
        "name": name,
        "options": SMALL if options is None else options,
        "dryRun": False,
        "share": False,
        "friendlyName": "my lab",
        **more,
    }
    return call(s, "PUT", "/my-lab/app", headers, body)


def fresh_name() -> str:
    return f"jupyter-lite-{secrets.randbelow(900000) + 100000}"


def app(s: Stack, headers: dict[str, str], name: str) -> ServiceOut:
    answer = get(s, "/my-lab/app", headers, serviceId=name)
    assert answer.status_code == 200, answer.text
    return ServiceOut.model_validate(answer.json())


def web_state(service: ServiceOut) -> str:
    """The state the Onyxia web shows (its serviceManagement selector)."""
    if service.status == "failed":
        return "failed"
    if service.status == "pending-install":
        return "starting"
    if service.suspended:
        return "suspended" if not service.tasks else "suspending"
    first = service.tasks[0].containers if service.tasks else []
    return "running" if first and all(c.ready for c in first) else "starting"


def until(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    ends = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > ends:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def in_state(s: Stack, headers: dict[str, str], name: str, state: str) -> ServiceOut:
    def check() -> ServiceOut | None:
        found = app(s, headers, name)
        return found if web_state(found) == state else None

    return until(check, f"{name} {state}")  # type: ignore[no-any-return]


def listed(s: Stack, headers: dict[str, str]) -> dict[str, ServiceOut]:
    answer = get(s, "/my-lab/services", headers)
    assert answer.status_code == 200, answer.text
    body = ServicesOut.model_validate(answer.json())
    assert body.groups == []
    return {a.id: a for a in body.apps}


def ours(s: Stack, headers: dict[str, str], project: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{s.url}/api/projects/{project}/services", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return {line["id"]: line for line in answer.json()}


def test_a_launch_through_onyxia_runs_and_is_managed_like_ours(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    project = f"o{tag}-alice"
    name = fresh_name()
    answer = put_app(s, alice, name)
    assert answer.status_code == 200, answer.text
    [installed] = INSTALLED.validate_python(answer.json())
    assert (installed.name, installed.namespace, installed.version) == (name, project, "2.0.0")
    assert installed.status == "pending-install"
    problem(put_app(s, alice, name), 409)  # the web's names are taken once

    # The web polls the service at once: it is there, starting, and never missing from lists.
    first = app(s, alice, name)
    assert web_state(first) in ("starting", "running")
    assert name in listed(s, alice)
    assert ours(s, alice, project)[name]["friendly_name"] == "my lab"

    running = in_state(s, alice, name, "running")
    raw = get(s, "/my-lab/services", alice).json()["apps"][0]
    # Onyxia's names on the wire, as the web reads them.
    assert {"startedAt", "appVersion", "catalogId", "friendlyName", "tasks", "env"} <= set(raw)
    assert set(raw["tasks"][0]) == {"id", "status", "containers"}
    assert set(raw["controllers"][0]["details"]) == {"desired", "ready"}
    assert running.status == "deployed"
    assert (running.chart, running.subtitle, running.catalog_id) == (
        "jupyter-lite-2.0.0",
        "jupyter-lite",
        "ide",
    )
    assert running.owner == "alice"
    assert running.suspendable
    assert running.started_at > 0
    assert running.env["resources.requests.memory"] == "1Gi"
    assert running.controllers
    assert running.controllers[0].healthy
    assert running.post_install_instructions
    assert ours(s, alice, project)[name]["status"] == "running"

    logs = get(s, "/my-lab/app/logs", alice, serviceId=name, taskId=running.tasks[0].id)
    assert logs.status_code == 200, logs.text
    assert logs.headers["content-type"].startswith("text/plain")
    problem(get(s, "/my-lab/app/logs", alice, serviceId=name, taskId="no-such-pod"), 404)

    renamed = call(s, "POST", "/my-lab/app/rename", alice, {"serviceID": name, "friendlyName": "x"})
    assert renamed.status_code == 200, renamed.text
    assert app(s, alice, name).friendly_name == "x"
    assert ours(s, alice, project)[name]["friendly_name"] == "x"
    # Sharing is for group projects: refused as Onyxia refuses input.
    problem(call(s, "POST", "/my-lab/app/share", alice, {"serviceID": name, "share": True}), 400)

    suspended = call(s, "POST", "/my-lab/app/suspend", alice, {"serviceID": name})
    assert suspended.status_code == 200, suspended.text
    assert in_state(s, alice, name, "suspended").tasks == []
    assert ours(s, alice, project)[name]["status"] == "suspended"
    resumed = call(s, "POST", "/my-lab/app/resume", alice, {"serviceID": name})
    assert resumed.status_code == 200, resumed.text
    in_state(s, alice, name, "running")

    deleted = call(s, "DELETE", "/my-lab/app", alice, path=name)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"path": name, "success": True}
    problem(get(s, "/my-lab/app", alice, serviceId=name), 404)
    assert name not in listed(s, alice)
    assert name not in ours(s, alice, project)


def test_launched_through_our_api_listed_shared_and_bulk_deleted_by_onyxias(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    group = f"og{tag}-stats"
    in_group = {**alice, "ONYXIA-PROJECT": group}
    launched = httpx.post(
        f"{s.url}/api/projects/{group}/services",
        json={"catalog": "ide", "chart": "jupyter-lite", "values": SMALL},
        headers=alice,
        timeout=60,
    )
    assert launched.status_code == 202, launched.text
    ours_name = launched.json()["release"]
    web_name = fresh_name()
    assert put_app(s, in_group, web_name).status_code == 200

    found = listed(s, in_group)
    assert {ours_name, web_name} <= set(found)
    assert found[ours_name].namespace == group
    assert ours_name not in listed(s, alice)  # the personal project's list is another
    in_state(s, in_group, ours_name, "running")

    shared = call(s, "POST", "/my-lab/app/share", in_group, {"serviceID": ours_name, "share": True})
    assert shared.status_code == 200, shared.text
    assert app(s, in_group, ours_name).share
    assert ours(s, alice, group)[ours_name]["share"] is True

    bulk = call(s, "DELETE", "/my-lab/app", in_group, bulk="true")
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["success"] is True
    assert not {ours_name, web_name} & set(ours(s, alice, group))
    assert not {ours_name, web_name} & set(listed(s, in_group))


def test_the_events_stream_sends_the_namespaces_events_as_json_frames(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    name = fresh_name()
    assert put_app(s, alice, name).status_code == 200
    in_state(s, alice, name, "running")  # scheduling made events
    frames: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{s.url}/api/my-lab/events", headers=alice, timeout=30) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                frames.append(json.loads(line[len("data:") :]))
                break
    [event] = frames
    assert event["metadata"]["uid"]
    assert event["metadata"]["namespace"] == f"o{tag}-alice"
    assert event["type"] in ("Normal", "Warning")
    assert call(s, "DELETE", "/my-lab/app", alice, path=name).json()["success"] is True


def test_refusals(s: Stack, tag: str, alice: dict[str, str]) -> None:
    bad = problem(
        put_app(s, alice, fresh_name(), {"resources": {"requests": {"memory": "lots"}}}), 400
    )
    assert bad.errors
    assert any("memory" in e.field for e in bad.errors), bad.errors
    problem(put_app(s, alice, "Not_A_Name"), 400)
    problem(put_app(s, alice, fresh_name(), packageName="no-such-chart"), 404)
    dry = put_app(s, alice, fresh_name(), dryRun=True)
    assert dry.status_code == 200, dry.text
    assert INSTALLED.validate_python(dry.json())[0].status == "dry-run"
    assert not [n for n in listed(s, alice) if n.startswith("jupyter-lite-")]  # nothing made

    for foreign in (f"og{tag}-economics", f"o{tag}-bob"):
        headers = {**alice, "ONYXIA-PROJECT": foreign}
        problem(get(s, "/my-lab/services", headers), 403)
        problem(put_app(s, headers, fresh_name()), 403)
        problem(get(s, "/my-lab/events", headers), 403)

    problem(get(s, "/my-lab/app", alice, serviceId="no-such-service"), 404)
    for path in ("suspend", "resume"):
        problem(call(s, "POST", f"/my-lab/app/{path}", alice, {"serviceID": "nope"}), 404)
    problem(call(s, "DELETE", "/my-lab/app", alice, path="no-such-service"), 404)
    problem(get(s, "/my-lab/app/logs", alice, serviceId="no-such-service"), 404)


@pytest.mark.parametrize("path", ["/my-lab/services", "/my-lab/events"])
def test_service_routes_need_a_token(s: Stack, path: str) -> None:
    problem(get(s, path), 401)


def test_the_whole_form_the_web_sends_keeps_the_platforms_values(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    # The web sends every value of the form, computed from its own context: its hostname,
    # the S3 credentials it minted itself, the locked fields' defaults.
    name = fresh_name()
    whole = {
        **SMALL,
        "global": {"suspend": False},
        "security": {"password": "the-webs-password", "allowlist": {"ip": "10.0.0.1"}},
        "s3": {
            "AWS_ACCESS_KEY_ID": "WEBKEY",
            "AWS_SECRET_ACCESS_KEY": "web-secret",
            "AWS_SESSION_TOKEN": "web-token",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_S3_ENDPOINT": "s3.browser-only.example.org",
        },
        "ingress": {"enabled": True, "hostname": "theirs.example.org", "ingressClassName": ""},
        "networking": {"service": {"port": 8888}},
    }
    answer = put_app(s, alice, name, whole)
    assert answer.status_code == 200, answer.text  # not "ingress: is fixed by the platform"
    try:
        service = in_state(s, alice, name, "running")
        # The user's choices are kept (the web shows this password); the platform decides
        # the hostname and the S3 credentials, and keeps none of the web's on the record.
        assert service.env["security.password"] == "the-webs-password"
        assert service.env["security.allowlist.ip"] == "10.0.0.1"
        assert not any(key.startswith(("s3.", "ingress.", "global.")) for key in service.env)
        assert service.urls
        assert all("theirs.example.org" not in url for url in service.urls), service.urls
        assert f"o{tag}-alice-" in service.urls[0]
    finally:
        call(s, "DELETE", "/my-lab/app", alice, path=name)
