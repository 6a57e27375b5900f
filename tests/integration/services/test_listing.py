"""The watch-fed service listing: administrators' view, surviving restarts of this process and
of the Kubernetes API server, and staying right after changes made behind the platform's back."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
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


def delete_cleanly(
    platform: Stack, headers: dict[str, str], kube: KubeClient, project: str, release: str
) -> None:
    """Delete a service through the API (204) and check that nothing of it is left."""
    answer = httpx.delete(
        f"{platform.url}/api/projects/{project}/services/{release}", headers=headers
    )
    assert answer.status_code == 204, answer.text
    assert eventually_clean(kube, project, release) == []


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
    delete_cleanly(platform, alice, kube, project, release)


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
    # The listing reads the record's mirror: the reconciler mirrors the changed record again.
    line = line_until(
        platform,
        alice,
        project,
        release,
        lambda s: s.get("friendly_name") == "Renamed behind its back",
    )
    assert line["status"] == "running"

    # And a launch made after the restart shows up and reaches running.
    again = launch_running(platform, alice, project, "jupyter-python", values=NO_VOLUME)["release"]
    assert listed_until(platform, alice, project, again, "running")["id"] == again
    for gone in (release, again):
        delete_cleanly(platform, alice, kube, project, gone)


def line_until(
    platform: Stack,
    headers: dict[str, str],
    project: str,
    release: str,
    wanted: Callable[[dict[str, Any]], bool],
    seconds: float = 60.0,
) -> dict[str, Any]:
    """The listing line of `release` ({}: not listed) once `wanted` holds; fails after
    `seconds` saying what the line was."""
    deadline = time.monotonic() + seconds
    while True:
        line = next((s for s in listing(platform, headers, project) if s["id"] == release), {})
        if wanted(line):
            return line
        assert time.monotonic() < deadline, f"the listing still shows {line}"
        time.sleep(0.25)


def test_the_listing_stays_right_after_changes_behind_the_platforms_back(
    platform: Stack, alice: dict[str, str], kube: KubeClient
) -> None:
    """Workloads, Ingresses and records changed straight in the cluster (kubectl's way): the
    shared watches and the mirror repair keep the listing true."""
    project = project_of(platform, alice)
    release = launch_running(platform, alice, project, "jupyter-python", values=NO_VOLUME)[
        "release"
    ]
    line_until(platform, alice, project, release, lambda s: s.get("status") == "running")
    apps = f"/apis/apps/v1/namespaces/{project}/statefulsets/{release}"
    merge = "application/merge-patch+json"

    # Scaled to zero by hand: no longer running, no resources held; then back.
    kube.request_sync("PATCH", apps, body={"spec": {"replicas": 0}}, content_type=merge)
    down = line_until(
        platform, alice, project, release, lambda s: s.get("status") not in (None, "running")
    )
    line_until(platform, alice, project, release, lambda s: s.get("requests") == {})
    assert down["status"] == "starting"  # still meant to run: it has a running_since
    kube.request_sync("PATCH", apps, body={"spec": {"replicas": 1}}, content_type=merge)
    line_until(platform, alice, project, release, lambda s: s.get("status") == "running")

    # Its Ingress given another host: the listing's URL follows.
    ingresses = kube.request_sync(
        "GET",
        f"/apis/networking.k8s.io/v1/namespaces/{project}/ingresses",
        query={"labelSelector": f"app.kubernetes.io/instance={release}"},
    )["items"]
    assert ingresses, "the chart makes an Ingress"
    ingress = ingresses[0]
    rules = ingress["spec"]["rules"]
    rules[0]["host"] = f"moved-{release}.example.test"
    kube.request_sync(
        "PATCH",
        f"/apis/networking.k8s.io/v1/namespaces/{project}/ingresses/{ingress['metadata']['name']}",
        body={"spec": {"rules": rules}},
        content_type=merge,
    )
    moved = line_until(
        platform,
        alice,
        project,
        release,
        lambda s: any(f"moved-{release}.example.test" in u for u in s.get("urls", [])),
    )
    assert moved["status"] == "running"

    # Its listing mirror deleted: gone from the listing at once, then mirrored again from the
    # record Secret by the reconciler, as it was.
    mirror = f"/api/v1/namespaces/{project}/configmaps/sh.onyxia.release.v1.{release}"
    kube.request_sync("DELETE", mirror, body={})
    line_until(platform, alice, project, release, lambda s: not s, seconds=10)
    back = line_until(platform, alice, project, release, lambda s: bool(s))
    assert back["friendly_name"] == moved["friendly_name"]
    assert back["created"] == moved["created"]

    # Its record Secret deleted: the mirror goes with it (owned by the Secret), and the
    # release left without a record is adopted (listed under its own name, deletable).
    record = f"/api/v1/namespaces/{project}/secrets/sh.onyxia.release.v1.{release}"
    uid = kube.request_sync("GET", record)["metadata"]["uid"]
    kube.request_sync("DELETE", record, body={})
    deadline = time.monotonic() + 60
    while True:
        mirrors = kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{project}/configmaps",
            query={"labelSelector": f"onyxia.sh/release={release}"},
        )["items"]
        owners = {o["uid"] for m in mirrors for o in m["metadata"].get("ownerReferences", [])}
        if uid not in owners:
            break
        assert time.monotonic() < deadline, "the mirror outlived its record"
        time.sleep(0.5)
    adopted = line_until(
        platform, alice, project, release, lambda s: s.get("created") not in (None, back["created"])
    )
    assert adopted["friendly_name"] == release
    delete_cleanly(platform, alice, kube, project, release)


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
