"""Launching services as real users (from the test OpenID Provider) on the local control plane."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD
from onyxia_py.errors import Forbidden, NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.quantities import parse_quantity
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..oidc_stack import Stack, bearer, stack
from .helpers import (
    CHARTS,
    eventually_clean,
    launch_running,
    listed_until,
    phases,
    project_of,
    wait_running,
)


def test_a_launch_streams_its_phases_and_reaches_running(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    started = time.perf_counter()
    accepted = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "jupyter-python", "friendly_name": "My notebook"},
        headers=alice,
        timeout=30,
    )
    took = time.perf_counter() - started
    assert accepted.status_code == 202, accepted.text
    assert took < 5  # well under a second on a quiet machine; generous for CI
    body = accepted.json()
    pod_lists = platform.app.app.state.platform.kube.listed["Pod"]
    events = phases(platform, alice, body["events_url"])
    # Progress comes from the watch cache: following the launch listed no pod.
    assert platform.app.app.state.platform.kube.listed["Pod"] == pod_lists
    seen = [e["phase"] for e in events]
    assert seen[0] == "accepted"
    assert seen[1] == "installing"
    assert seen[-1] == "running", events
    order = ["accepted", "installing", "scheduled", "pulling-image", "running"]
    assert [p for p in order if p in seen] == seen
    service = listed_until(platform, alice, project, body["id"], "running")
    assert service["reason"] is None
    assert service["friendly_name"] == "My notebook"
    assert service["chart"] == "jupyter-python"
    assert service["catalog"] == "ide"
    assert service["running_since"]
    assert service["started"]
    assert service["created"]
    assert service["urls"]
    assert service["urls"][0].startswith(f"https://{project}-")
    assert service["requests"]["cpu"]
    assert service["requests"]["memory"]
    assert service["gpus"] == 0
    assert service["owner"] == "alice"
    removed = httpx.delete(
        f"{platform.url}/api/projects/{project}/services/{body['id']}", headers=alice
    )
    assert removed.status_code == 204
    assert eventually_clean(kube, project, body["id"]) == []


def test_quota_is_checked_before_anything_is_created(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    refused = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={
            "catalog": "ide",
            "chart": "jupyter-python",
            "values": {"resources": {"requests": {"cpu": "4000m"}, "limits": {"cpu": "4000m"}}},
        },
        headers=alice,
        timeout=30,
    )
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:onyxia-py:problem:quota-exceeded"
    assert re.fullmatch(
        rf"requested 4 CPU, [0-9.]+ CPU available in {project} \(requests\.cpu\)", problem["detail"]
    ), problem["detail"]
    metas = kube.request_sync(
        "GET", f"/api/v1/namespaces/{project}/secrets", query={"labelSelector": "onyxia.sh/release"}
    )["items"]
    assert metas == []
    # The refusal is in the audit log with its reason (alice is an admin here).
    audit = httpx.get(
        f"{platform.url}/api/admin/audit",
        params={"action": "service.launch", "outcome": "refused", "target": project},
        headers=alice,
    ).json()
    assert audit, "the refused launch was not audited"
    assert audit[0]["details"]["reason"] == "quota-exceeded"
    assert audit[0]["details"]["message"] == problem["detail"]


def test_more_gpus_than_any_node_offers_is_refused_up_front(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    refused = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={
            "catalog": "ide",
            "chart": "jupyter-pytorch-gpu",
            "values": {"resources": {"limits": {"nvidia.com/gpu": "3"}}},
        },
        headers=alice,
        timeout=30,
    )
    # The quota allows it; no node could ever run it: refused before anything is made.
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:onyxia-py:problem:no-capacity"
    assert re.fullmatch(
        r"requested 3 GPU; the largest (\S+ )?node offers [12]", problem["detail"]
    ), problem["detail"]
    metas = kube.request_sync(
        "GET", f"/api/v1/namespaces/{project}/secrets", query={"labelSelector": "onyxia.sh/release"}
    )["items"]
    assert metas == []


def test_users_cannot_reach_each_others_services(
    platform: Stack, alice: dict[str, str], bob: dict[str, str], kube: KubeClient
) -> None:
    alices = project_of(platform, alice)
    project_of(platform, bob)
    assert (
        httpx.get(f"{platform.url}/api/projects/{alices}/services", headers=bob).status_code == 403
    )
    deleting = httpx.delete(
        f"{platform.url}/api/projects/{alices}/services/jupyter-python-123456", headers=bob
    )
    assert deleting.status_code == 403
    launching = httpx.post(
        f"{platform.url}/api/projects/{alices}/services",
        json={"catalog": "ide", "chart": "rstudio"},
        headers=bob,
    )
    assert launching.status_code == 403
    # Bypassing our API with bob's identity: the API server refuses too.
    with pytest.raises(Forbidden):
        kube.request_sync(
            "GET", f"/api/v1/namespaces/{alices}/secrets", as_=Impersonation("bob", ("economics",))
        )


def test_detail_suspend_and_resume_after_the_version_left_the_catalogue(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    made = httpx.post(
        f"{platform.url}/api/admin/catalogs",
        json={"id": "lab", "name": "Lab", "location": str(CHARTS)},
        headers=alice,
    )
    assert made.status_code == 201, made.text
    release = launch_running(platform, alice, project, "jupyter-python", catalog="lab")["release"]
    detail = wait_running(platform, alice, project, release)
    assert detail["helm_status"] == "deployed"
    assert detail["controllers"]
    assert detail["controllers"][0]["ready"] == 1
    assert any(e["reason"] == "Scheduled" for e in detail["events"]), detail["events"]
    assert detail["suspended"] is False
    assert detail["urls"]
    assert detail["urls"][0].startswith(f"https://{project}-")
    assert detail["values"]["security"]["password"] == "********"
    assert "jupyter" in detail["notes"].lower()

    url = f"{platform.url}/api/projects/{project}/services/{release}"
    assert httpx.post(f"{url}/suspend", headers=alice, timeout=60).status_code == 204
    for _ in range(60):
        if not kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{project}/pods",
            query={"labelSelector": f"app.kubernetes.io/instance={release}"},
        )["items"]:
            break
        time.sleep(0.25)
    assert httpx.get(url, headers=alice).json()["suspended"] is True
    suspended = listed_until(platform, alice, project, release, "suspended")
    assert suspended["requests"] == {}
    assert suspended["started"] is None

    # The catalogue stops offering the chart: resuming still uses the installed version.
    changed = httpx.put(
        f"{platform.url}/api/admin/catalogs/lab",
        json={"name": "Lab", "location": str(CHARTS), "excludedCharts": ["jupyter-python"]},
        headers=alice,
    )
    assert changed.status_code == 200, changed.text
    assert (
        httpx.get(
            f"{platform.url}/api/catalogs/lab/charts/jupyter-python", headers=alice
        ).status_code
        == 404
    )
    resumed = httpx.post(f"{url}/resume", headers=alice, timeout=90)
    assert resumed.status_code == 204, resumed.text
    assert wait_running(platform, alice, project, release)["suspended"] is False
    assert listed_until(platform, alice, project, release, "running")["version"]

    assert httpx.delete(url, headers=alice).status_code == 204
    assert httpx.delete(f"{platform.url}/api/admin/catalogs/lab", headers=alice).status_code == 204
    assert eventually_clean(kube, project, release) == []


def test_group_sharing_rename_and_relaunch(
    platform: Stack, alice: dict[str, str], carol: dict[str, str], kube: KubeClient
) -> None:
    me = httpx.get(f"{platform.url}/api/me", headers=alice).json()
    group = next(p["id"] for p in me["projects"] if p["group"] == "stats")
    base = f"{platform.url}/api/projects/{group}/services"
    no_volume = {"persistence": {"enabled": False}}
    release = launch_running(platform, alice, group, "rstudio", values=no_volume)["release"]
    assert [s["id"] for s in httpx.get(base, headers=carol).json()] == []
    assert httpx.get(f"{base}/{release}", headers=carol).status_code == 404

    shared = httpx.patch(
        f"{base}/{release}", json={"share": True, "friendly_name": "Team RStudio"}, headers=alice
    )
    assert shared.status_code == 200, shared.text
    listed = httpx.get(base, headers=carol).json()
    assert [(s["id"], s["friendly_name"], s["share"]) for s in listed] == [
        (release, "Team RStudio", True)
    ]
    assert httpx.delete(f"{base}/{release}", headers=carol).status_code == 403
    assert httpx.patch(f"{base}/{release}", json={"share": False}, headers=carol).status_code == 403
    personal = httpx.patch(
        f"{platform.url}/api/projects/{project_of(platform, alice)}/services/{release}",
        json={"share": True},
        headers=alice,
    )
    assert personal.status_code == 404, personal.text

    again = httpx.post(f"{base}/{release}/relaunch", headers=alice, timeout=30)
    assert again.status_code == 202, again.text
    second = again.json()
    assert second["release"] != release
    assert phases(platform, alice, second["events_url"])[-1]["phase"] == "running"
    values = httpx.get(f"{base}/{second['release']}", headers=alice).json()["values"]
    assert values["persistence"]["enabled"] is False
    for name in (release, second["release"]):
        assert httpx.delete(f"{base}/{name}", headers=alice).status_code == 204


def test_saved_launches(
    platform: Stack, alice: dict[str, str], bob: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    base = f"{platform.url}/api/projects/{project}/saved"
    refused = httpx.post(
        base,
        json={"name": "bad", "catalog": "ide", "chart": "rstudio", "values": {"hostNetwork": True}},
        headers=alice,
    )
    assert refused.status_code == 422
    saved = httpx.post(
        base,
        json={
            "name": "Small RStudio",
            "catalog": "ide",
            "chart": "rstudio",
            "values": {"persistence": {"enabled": False}},
        },
        headers=alice,
    )
    assert saved.status_code == 201, saved.text
    saved_id = saved.json()["id"]
    renamed = httpx.patch(f"{base}/{saved_id}", json={"name": "Tiny RStudio"}, headers=alice)
    assert renamed.json()["name"] == "Tiny RStudio"
    assert [s["name"] for s in httpx.get(base, headers=alice).json()] == ["Tiny RStudio"]
    bobs = f"{platform.url}/api/projects/{project_of(platform, bob)}/saved"
    assert httpx.get(bobs, headers=bob).json() == []
    assert httpx.post(f"{bobs}/{saved_id}/launch", headers=bob).status_code == 404

    launched = httpx.post(f"{base}/{saved_id}/launch", headers=alice, timeout=30)
    assert launched.status_code == 202, launched.text
    accepted = launched.json()
    assert phases(platform, alice, accepted["events_url"])[-1]["phase"] == "running"
    service = f"{platform.url}/api/projects/{project}/services/{accepted['release']}"
    detail = httpx.get(service, headers=alice).json()
    assert detail["friendly_name"] == "Tiny RStudio"
    assert detail["values"]["persistence"]["enabled"] is False
    assert httpx.delete(service, headers=alice).status_code == 204
    assert httpx.delete(f"{base}/{saved_id}", headers=alice).status_code == 204
    assert httpx.get(base, headers=alice).json() == []


def test_logs_and_following_them(
    platform: Stack, alice: dict[str, str], bob: dict[str, str]
) -> None:
    project = project_of(platform, alice)
    no_volume = {"persistence": {"enabled": False}}
    accepted = launch_running(platform, alice, project, "vscode-python", values=no_volume)
    url = f"{platform.url}/api/projects/{project}/services/{accepted['release']}/logs"
    tail = httpx.get(url, params={"tail": 5}, headers=alice, timeout=30)
    assert tail.status_code == 200, tail.text
    body = tail.json()
    assert len(body["lines"]) == 5
    assert body["lines"][-1].endswith("line 20")
    followed = []
    with httpx.stream(
        "GET", url, params={"tail": 1, "follow": "true"}, headers=alice, timeout=30
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                followed.append(json.loads(line[6:]))
            if len(followed) == 3:
                break
    assert followed[0].endswith("line 20")
    assert "still running" in followed[1]
    assert "still running" in followed[2]
    assert httpx.get(url, headers=bob).status_code == 403
    assert httpx.delete(url.removesuffix("/logs"), headers=alice).status_code == 204


def test_lifetime_policy_warns_then_suspends(
    tmp_path: Path, kube_settings: KubernetesSettings, kube: KubeClient
) -> None:
    tag = secrets.token_hex(3)
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"l{tag}-", group_namespace_prefix=f"lg{tag}-"
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp_path / "cache",
        ),
        # Six seconds of running time, a warning four seconds before, checked twice a second.
        "services": {
            "max_running_hours": 6 / 3600,
            "gpu_max_running_hours": 6 / 3600,
            "warning_minutes": 4 / 60,
            "culling_interval_seconds": 0.5,
        },
    }
    with stack(tmp_path, settings=overrides) as s:
        headers = bearer(s.tokens("alice", ALICE_PASSWORD)["access_token"])
        project = project_of(s, headers)
        no_volume = {"persistence": {"enabled": False}}
        accepted = launch_running(s, headers, project, "rstudio", values=no_volume)
        url = f"{s.url}/api/projects/{project}/services/{accepted['release']}"
        warned = suspended = False
        for _ in range(80):
            events = kube.request_sync("GET", f"/api/v1/namespaces/{project}/events")["items"]
            warned = warned or any(e.get("reason") == "LifetimeEnding" for e in events)
            suspended = httpx.get(url, headers=headers).json()["suspended"]
            if suspended:
                break
            time.sleep(0.25)
        assert warned
        assert suspended
        audit = httpx.get(f"{s.url}/api/admin/audit", headers=headers).json()
        assert any(
            e["action"] == "service.lifetime-suspend" and e["actor"] == "onyxia-py" for e in audit
        )
        # Resuming starts a new running period.
        assert httpx.post(f"{url}/resume", headers=headers, timeout=60).status_code == 204
        assert httpx.get(url, headers=headers).json()["suspended"] is False
        assert httpx.delete(url, headers=headers).status_code == 204
    with contextlib.suppress(NotFound):
        kube.request_sync("DELETE", f"/api/v1/namespaces/l{tag}-alice", body={})


def quota_matches_pods(kube: KubeClient, namespace: str) -> bool:
    """The quota's used CPU equals what the namespace's live pods request (within 30 s: the
    quota controller catches up with deletions asynchronously, slower on a loaded machine)."""
    for _ in range(120):
        quota = kube.request_sync(
            "GET", f"/api/v1/namespaces/{namespace}/resourcequotas/onyxia-quota"
        )
        pods = kube.request_sync("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        requested = sum(
            parse_quantity(c.get("resources", {}).get("requests", {}).get("cpu", "0"))
            for p in pods
            if p["status"].get("phase") not in ("Succeeded", "Failed")
            for c in p["spec"]["containers"]
        )
        used = parse_quantity(quota["status"]["used"].get("requests.cpu", "0"))
        if used == requested:
            return True
        time.sleep(0.25)
    names = [(p["metadata"]["name"], p["status"].get("phase")) for p in pods]
    print(f"quota of {namespace}: used {used} CPU, pods request {requested}: {names}")
    return False


def test_twenty_concurrent_launches_by_five_users(platform: Stack, kube: KubeClient) -> None:
    passwords = {
        "alice": ALICE_PASSWORD,
        "bob": BOB_PASSWORD,
        "carol": "carol-password",
        "dave": "dave-password",
        "erin": "erin-password",
    }
    headers = {u: bearer(platform.tokens(u, p)["access_token"]) for u, p in passwords.items()}
    projects = {u: project_of(platform, h) for u, h in headers.items()}
    before = {}
    for user, project in projects.items():
        answer = httpx.get(f"{platform.url}/api/projects/{project}/services", headers=headers[user])
        assert answer.status_code == 200, answer.text
        before[user] = len(answer.json())

    def launch(user: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{platform.url}/api/projects/{projects[user]}/services",
            json={
                "catalog": "ide",
                "chart": "rstudio",
                "values": {"persistence": {"enabled": False}},
            },
            headers=headers[user],
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        accepted: dict[str, Any] = answer.json()
        accepted["user"] = user
        return accepted

    with ThreadPoolExecutor(max_workers=20) as pool:
        launches = list(pool.map(launch, [u for u in passwords for _ in range(4)]))
        finals = list(
            pool.map(lambda a: phases(platform, headers[a["user"]], a["events_url"])[-1], launches)
        )
    assert len({a["release"] for a in launches}) == 20
    assert [f["phase"] for f in finals] == ["running"] * 20, finals
    for user, project in projects.items():
        listed = httpx.get(
            f"{platform.url}/api/projects/{project}/services", headers=headers[user]
        ).json()
        assert len(listed) == before[user] + 4, (user, before, [x["id"] for x in listed])
        assert {s["owner"] for s in listed} == {user}
        assert quota_matches_pods(kube, project)
    for launched in launches:
        project = projects[launched["user"]]
        url = f"{platform.url}/api/projects/{project}/services/{launched['release']}"
        assert httpx.delete(url, headers=headers[launched["user"]]).status_code == 204
