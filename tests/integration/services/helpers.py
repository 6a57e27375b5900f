"""Helpers of the service tests: launching, following, waiting, and looking for leftovers."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devtools.localoidc import ALICE_PASSWORD, default_users
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.services import objects
from onyxia_py.services.models import ServiceMeta
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ...support import wait_for_catalogs
from ..oidc_stack import Stack, browser_login, stack

CHARTS = Path(__file__).parents[3] / "charts"


def project_of(platform: Stack, headers: dict[str, str]) -> str:
    me = httpx.get(f"{platform.url}/api/me", headers=headers).json()
    return str(me["projects"][0]["id"])


def phases(platform: Stack, headers: dict[str, str], events_url: str) -> list[dict[str, Any]]:
    seen = []
    with httpx.stream("GET", platform.url + events_url, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


def launch_running(
    platform: Stack,
    headers: dict[str, str],
    project: str,
    chart: str,
    *,
    catalog: str = "ide",
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Launch `chart`, follow it to its end, check it runs; the 202 answer."""
    answer = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": catalog, "chart": chart, "values": values or {}},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    assert phases(platform, headers, accepted["events_url"])[-1]["phase"] == "running"
    return accepted


def leftovers(kube: KubeClient, namespace: str, release: str) -> list[str]:
    """Everything of `release` still in the namespace (metadata, Helm records, volumes, pods)."""
    base = f"/api/v1/namespaces/{namespace}"
    checks = [
        (f"{base}/secrets", f"onyxia.sh/release={release}"),
        (f"{base}/configmaps", f"onyxia.sh/release={release}"),
        (f"{base}/secrets", f"owner=helm,name={release}"),
        (f"{base}/persistentvolumeclaims", f"app.kubernetes.io/instance={release}"),
        (
            f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
            f"app.kubernetes.io/instance={release}",
        ),
    ]
    found = []
    for path, selector in checks:
        items = kube.request_sync("GET", path, query={"labelSelector": selector})["items"]
        found += [f"{path.rsplit('/', 1)[1]}/{i['metadata']['name']}" for i in items]
    return found


def eventually_clean(kube: KubeClient, namespace: str, release: str) -> list[str]:
    """Leftovers once deletions finished (volumes wait for their pods to go)."""
    for _ in range(60):
        found = leftovers(kube, namespace, release)
        if not found:
            return found
        time.sleep(0.5)
    return found


def listed_until(
    platform: Stack, headers: dict[str, str], project: str, release: str, status: str
) -> dict[str, Any]:
    """The listing line of `release` once its status is `status` (the watches lag a little)."""
    line: dict[str, Any] = {}
    for _ in range(120):
        listed = httpx.get(f"{platform.url}/api/projects/{project}/services", headers=headers)
        assert listed.status_code == 200, listed.text
        line = next((s for s in listed.json() if s["id"] == release), {})
        if line.get("status") == status:
            return line
        time.sleep(0.25)
    raise AssertionError(f"{release} never listed as {status}: {line}")


def wait_running(
    platform: Stack, headers: dict[str, str], project: str, release: str
) -> dict[str, Any]:
    for _ in range(120):
        detail: dict[str, Any] = httpx.get(
            f"{platform.url}/api/projects/{project}/services/{release}", headers=headers
        ).json()
        if detail["pods"] and all(p["ready"] for p in detail["pods"]):
            return detail
        time.sleep(0.25)
    raise AssertionError(f"{release} never became ready: {detail}")


def helm_statuses(kube: KubeClient, namespace: str, release: str) -> list[tuple[int, str]]:
    """Each stored revision of `release` with its status, oldest first."""
    items = kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{namespace}/secrets",
        query={"labelSelector": f"owner=helm,name={release}"},
    )["items"]
    labels = [i["metadata"]["labels"] for i in items]
    return sorted((int(label.get("version", 0)), label.get("status", "")) for label in labels)


def record(kube: KubeClient, namespace: str, release: str) -> ServiceMeta | None:
    """The service record of `release`, if it has one."""
    items = kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{namespace}/secrets",
        query={"labelSelector": f"{objects.RELEASE_LABEL}={release}"},
    )["items"]
    return objects.read_meta(items[0]) if items else None


class Follower(threading.Thread):
    """Follows a launch's event stream to its end, noting when it ended."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: list[dict[str, Any]] = []
        self.ended: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=120) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
        except BaseException as exc:  # reported by the test
            self.error = exc
        self.ended = time.monotonic()


@contextlib.contextmanager
def catalogue_stack(
    tmp: Path,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    definitions: list[dict[str, Any]],
    *,
    quota: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """The app over `definitions` on the local control plane with the real OpenID Provider,
    its projects under a fresh prefix, alice logged in once (her project made); her namespace
    is removed at the end."""
    tag = secrets.token_hex(3)
    projects = ProjectSettings(
        user_namespace_prefix=f"c{tag}-",
        group_namespace_prefix=f"cg{tag}-",
        **({"user_quota": quota} if quota is not None else {}),
    )
    overrides = {
        "kubernetes": kube_settings,
        "projects": projects,
        "catalogs": CatalogSettings(paths=[], definitions=definitions, cache_dir=tmp / "cache"),
    }
    try:
        with stack(tmp, settings=overrides, users=default_users()) as running:
            wait_for_catalogs(httpx.get, running.url)
            _, done = browser_login(running, "alice", ALICE_PASSWORD)
            assert done.status_code == 303
            yield running
    finally:
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/c{tag}-alice", body={})
