"""The watch-fed service listing: administrators' view, and surviving restarts of this process
and of the Kubernetes API server."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from devtools.localcluster import LocalCluster
from onyxia_py.kube import KubeClient

from ..oidc_stack import Stack
from .helpers import eventually_clean, launch_running, listed_until, project_of

NO_VOLUME = {"persistence": {"enabled": False}}


def listing(platform: Stack, headers: dict[str, str], project: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{platform.url}/api/projects/{project}/services", headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_admins_list_and_act_on_every_service(
    platform: Stack, alice: dict[str, str], bob: dict[str, str], kube: KubeClient
) -> None:
    mine = project_of(platform, alice)
    theirs = project_of(platform, bob)
    own = launch_running(platform, alice, mine, "jupyter-python", values=NO_VOLUME)["release"]
    other = launch_running(platform, bob, theirs, "jupyter-python", values=NO_VOLUME)["release"]

    refused = httpx.get(f"{platform.url}/api/admin/services", headers=bob)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    everything = httpx.get(f"{platform.url}/api/admin/services", headers=alice)
    assert everything.status_code == 200, everything.text
    lines = {(s["project"], s["id"]): s for s in everything.json()}
    assert lines[(mine, own)]["owner"] == "alice"
    assert lines[(theirs, other)]["owner"] == "bob"
    assert lines[(theirs, other)]["status"] in ("starting", "running")
    of_bob = httpx.get(
        f"{platform.url}/api/admin/services", params={"owner": "bob"}, headers=alice
    ).json()
    assert {s["owner"] for s in of_bob} == {"bob"}
    assert other in {s["id"] for s in of_bob}

    base = f"{platform.url}/api/admin/services/{theirs}/{other}"
    assert httpx.post(f"{base}/suspend", headers=bob).status_code == 403
    assert httpx.post(f"{base}/suspend", headers=alice, timeout=60).status_code == 204
    assert listed_until(platform, bob, theirs, other, "suspended")["owner"] == "bob"
    suspended = httpx.get(
        f"{platform.url}/api/admin/services", params={"status": "suspended"}, headers=alice
    ).json()
    assert other in {s["id"] for s in suspended}
    assert own not in {s["id"] for s in suspended}
    assert {s["status"] for s in suspended} == {"suspended"}
    of_project = httpx.get(
        f"{platform.url}/api/admin/services", params={"project": theirs}, headers=alice
    ).json()
    assert {s["project"] for s in of_project} == {theirs}
    assert other in {s["id"] for s in of_project}
    missing = httpx.post(
        f"{platform.url}/api/admin/services/{theirs}/nothing-here/suspend", headers=alice
    )
    assert missing.status_code == 404
    assert httpx.delete(base, headers=alice, timeout=60).status_code == 204
    assert other not in {s["id"] for s in listing(platform, bob, theirs)}
    assert eventually_clean(kube, theirs, other) == []

    audit = httpx.get(
        f"{platform.url}/api/admin/audit", params={"actor": "alice"}, headers=alice
    ).json()
    targets = {(e["action"], e["target"]) for e in audit}
    assert ("service.suspend", f"{theirs}/{other}") in targets
    assert ("service.delete", f"{theirs}/{other}") in targets

    assert (
        httpx.delete(
            f"{platform.url}/api/projects/{mine}/services/{own}", headers=alice
        ).status_code
        == 204
    )


def test_the_listing_survives_a_restart_of_the_platform(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    project = project_of(platform, alice)
    release = launch_running(platform, alice, project, "jupyter-python", values=NO_VOLUME)[
        "release"
    ]
    before = listed_until(platform, alice, project, release, "running")

    platform.restart()  # a new process's worth of objects: the cache starts empty

    after = listed_until(platform, alice, project, release, "running")
    assert after["friendly_name"] == before["friendly_name"]
    assert after["created"] == before["created"]
    assert after["urls"] == before["urls"]
    assert (
        httpx.delete(
            f"{platform.url}/api/projects/{project}/services/{release}", headers=alice
        ).status_code
        == 204
    )
    assert eventually_clean(kube, project, release) == []


def test_the_listing_follows_changes_after_the_api_server_restarts(
    platform: Stack,
    alice: dict[str, str],
    kube: KubeClient,
    local_cluster: LocalCluster | None,
) -> None:
    if local_cluster is None:
        pytest.skip("restarts the local control plane's API server; not an existing cluster")
    project = project_of(platform, alice)
    release = launch_running(platform, alice, project, "jupyter-python", values=NO_VOLUME)[
        "release"
    ]
    listed_until(platform, alice, project, release, "running")  # the project is followed

    local_cluster.restart_apiserver(down_seconds=2.0)

    # A change made behind the platform's back after the restart reaches the listing only if
    # the watches resumed.
    name = base64.b64encode(b"Renamed behind its back").decode()
    deadline = time.monotonic() + 30
    while True:
        try:
            kube.request_sync(
                "PATCH",
                f"/api/v1/namespaces/{project}/secrets/sh.onyxia.release.v1.{release}",
                body={"data": {"friendlyName": name}},
                content_type="application/merge-patch+json",
            )
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    for _ in range(120):
        line = next(s for s in listing(platform, alice, project) if s["id"] == release)
        if line["friendly_name"] == "Renamed behind its back":
            break
        time.sleep(0.25)
    assert line["friendly_name"] == "Renamed behind its back"
    assert line["status"] == "running"

    # And a launch made after the restart shows up and reaches running.
    again = launch_running(platform, alice, project, "jupyter-python", values=NO_VOLUME)["release"]
    assert listed_until(platform, alice, project, again, "running")["id"] == again
    for gone in (release, again):
        assert (
            httpx.delete(
                f"{platform.url}/api/projects/{project}/services/{gone}", headers=alice
            ).status_code
            == 204
        )
        assert eventually_clean(kube, project, gone) == []


def test_deleting_all_mine_leaves_the_others_services(
    platform: Stack, alice: dict[str, str], carol: dict[str, str], kube: KubeClient
) -> None:
    me = httpx.get(f"{platform.url}/api/me", headers=alice).json()
    group = next(p["id"] for p in me["projects"] if p["group"] == "stats")
    theirs = launch_running(platform, carol, group, "jupyter-python", values=NO_VOLUME)["release"]
    mine = {
        launch_running(platform, alice, group, "jupyter-python", values=NO_VOLUME)["release"]
        for _ in range(2)
    }
    answer = httpx.delete(
        f"{platform.url}/api/projects/{group}/services", headers=alice, timeout=90
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["deleted"]) == mine
    assert [s["id"] for s in listing(platform, carol, group)] == [theirs]
    for release in mine:
        assert eventually_clean(kube, group, release) == []
    assert httpx.delete(
        f"{platform.url}/api/projects/{group}/services", headers=carol, timeout=90
    ).json() == {"deleted": [theirs]}
    assert eventually_clean(kube, group, theirs) == []
