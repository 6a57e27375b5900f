"""Two replicas of one installation: two apps on real ports sharing one database and one Lease on
the real API server. Catalogue changes made on either reach the other within seconds; only the
leader runs the background jobs, and the other takes over when it stops."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devtools.helmrepo import HelmRepoServer, fixture_repository
from devtools.ports import free_ports
from onyxia_py.app import create_app
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import (
    AuthSettings,
    CatalogSettings,
    DatabaseSettings,
    HelmSettings,
    KubernetesSettings,
    LeaderElectionSettings,
    ProjectSettings,
    ServerSettings,
    Settings,
)

from ..support import ServedApp, wait_for_catalogs
from .services.helpers import eventually_clean

SYNC_SECONDS = 0.5
CHARTS = Path(__file__).parents[2] / "charts"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "charts"


@pytest.fixture(scope="module")
def repo() -> Iterator[HelmRepoServer]:
    with fixture_repository() as server:
        yield server


def replica_settings(
    tmp_path: Path,
    kube_settings: KubernetesSettings,
    namespace: str,
    port: int,
    tag: str,
    *,
    catalogs: list[dict[str, str]] | None = None,
    helm_timeout: int = 600,
) -> Settings:
    """One replica: its own port and chart cache, the installation's database and Lease."""
    return Settings(
        helm=HelmSettings(timeout_seconds=helm_timeout),
        server=ServerSettings(port=port, public_url=f"http://127.0.0.1:{port}"),
        kubernetes=kube_settings,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"),
        auth=AuthSettings(local_username=f"admin{tag}"),
        projects=ProjectSettings(user_namespace_prefix=f"r{tag}-"),
        catalogs=CatalogSettings(
            paths=[],
            definitions=[
                {"id": "ide", "name": "IDE", "location": str(CHARTS)},
                *(catalogs or []),
            ],
            cache_dir=tmp_path / f"cache-{port}",
            sync_interval_seconds=SYNC_SECONDS,
        ),
        leader_election=LeaderElectionSettings(
            lease_namespace=namespace,
            lease_duration_seconds=3,
            renew_deadline_seconds=2,
            retry_period_seconds=0.3,
        ),
    )


def admin_client(url: str) -> httpx.Client:
    """A logged-in session of auth mode none's local user (an administrator)."""
    http = httpx.Client(base_url=url, timeout=30)
    http.get("/auth/login")
    http.headers["X-CSRF-Token"] = http.get("/auth/session").json()["csrf_token"]
    return http


def eventually(check: Callable[[], bool], seconds: float) -> float:
    """Wait until `check()` holds; the time it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


def stored(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """The administrator's view of the catalogues, by id."""
    return {c["id"]: c for c in http.get("/api/admin/catalogs").json()}


def leading(app: FastAPI) -> bool:
    return bool(app.state.leadership.leading)


def test_two_replicas_share_catalogue_changes_and_one_leader(
    tmp_path: Path,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    namespace: str,
    repo: HelmRepoServer,
) -> None:
    tag = secrets.token_hex(3)
    apps = [
        create_app(replica_settings(tmp_path, kube_settings, namespace, port, tag))
        for port in free_ports(2)
    ]
    with contextlib.ExitStack() as running:
        served = [
            running.enter_context(ServedApp(app, app.state.platform.settings.server.port))
            for app in apps
        ]
        for replica in served:
            wait_for_catalogs(httpx.get, replica.url)
        a, b = (admin_client(replica.url) for replica in served)
        running.callback(a.close)
        running.callback(b.close)

        # One leader; the culler runs there only.
        eventually(lambda: any(leading(app) for app in apps), 10)
        time.sleep(1)
        assert [leading(app) for app in apps].count(True) == 1
        assert [app.state.platform.culler.running for app in apps] == [leading(app) for app in apps]

        # Made on one replica: served by the other within seconds, password included.
        made = a.post(
            "/api/admin/catalogs",
            json={"id": "shared", "name": "Shared", "location": repo.url, "password": "pw-1234"},
        )
        assert made.status_code == 201, made.text
        took = eventually(lambda: b.get("/api/catalogs/shared").status_code == 200, 10)
        assert took < 3 * SYNC_SECONDS + 2
        assert b.get("/api/catalogs/shared").json()["charts"]
        seen = stored(b)["shared"]
        assert seen["origin"] == "database"
        assert seen["has_password"] is True
        assert seen["status"]["chart_count"] == 2

        # Changed on the other: the first follows.
        changed = b.put(
            "/api/admin/catalogs/shared", json={"name": "Renamed", "location": repo.url}
        )
        assert changed.status_code == 200, changed.text
        eventually(lambda: stored(a)["shared"]["definition"]["name"] == "Renamed", 10)
        assert stored(a)["shared"]["has_password"] is True  # kept through the update

        # Removed on the first: gone from the second.
        assert a.delete("/api/admin/catalogs/shared").status_code == 204
        eventually(lambda: b.get("/api/catalogs/shared").status_code == 404, 10)
        assert "shared" not in stored(b)

        # The leader stops cleanly (releasing the Lease): the other leads at once.
        first = 0 if leading(apps[0]) else 1
        served[first].__exit__(None, None, None)
        took = eventually(lambda: leading(apps[1 - first]), 5)
        assert took < 2
        assert apps[1 - first].state.platform.culler.running
        lease = kube.request_sync(
            "GET",
            f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/"
            f"{apps[1 - first].state.leadership.name}",
        )
        assert lease["spec"]["holderIdentity"] == apps[1 - first].state.leadership.identity
    with contextlib.suppress(NotFound):
        kube.request_sync("DELETE", f"/api/v1/namespaces/r{tag}-admin{tag}", body={})


def phases(http: httpx.Client, url: str) -> list[dict[str, Any]]:
    """A launch's events, followed to the end."""
    seen = []
    with http.stream("GET", url, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


@contextlib.contextmanager
def two_replicas(
    tmp_path: Path,
    kube_settings: KubernetesSettings,
    namespace: str,
    tag: str,
    **options: Any,
) -> Iterator[tuple[httpx.Client, httpx.Client, str]]:
    """Two replicas served on real ports, each with an administrator's session; and the
    administrator's project."""
    apps = [
        create_app(replica_settings(tmp_path, kube_settings, namespace, port, tag, **options))
        for port in free_ports(2)
    ]
    with contextlib.ExitStack() as running:
        served = [
            running.enter_context(ServedApp(app, app.state.platform.settings.server.port))
            for app in apps
        ]
        for replica in served:
            wait_for_catalogs(httpx.get, replica.url)
        a, b = (admin_client(replica.url) for replica in served)
        running.callback(a.close)
        running.callback(b.close)
        yield a, b, a.get("/api/me").json()["projects"][0]["id"]


def test_a_launch_is_followed_through_another_replica(
    tmp_path: Path, kube_settings: KubernetesSettings, kube: KubeClient, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    with two_replicas(tmp_path, kube_settings, namespace, tag) as (a, b, project):
        # Accepted by one replica, followed through the other, to the same end.
        made = a.post(
            f"/api/projects/{project}/services",
            json={"catalog": "ide", "chart": "jupyter-python", "values": {}},
        )
        assert made.status_code == 202, made.text
        url = made.json()["events_url"]
        elsewhere = phases(b, url)
        here = phases(a, url)
        assert elsewhere[0]["phase"] == "accepted", elsewhere
        assert [e["phase"] for e in elsewhere][-1] == "running", elsewhere
        assert [e["phase"] for e in here][-1] == "running", here
        assert {e["phase"] for e in elsewhere} <= {e["phase"] for e in here}
        release = made.json()["release"]
        listed = {s["id"]: s for s in b.get(f"/api/projects/{project}/services").json()}
        assert listed[release]["status"] == "running"

        # Unknown releases are not followed anywhere.
        assert b.get(f"/api/projects/{project}/services/nothing-here/events").status_code == 404
        assert a.delete(f"/api/projects/{project}/services/{release}").status_code in (200, 204)
    with contextlib.suppress(NotFound):
        kube.request_sync("DELETE", f"/api/v1/namespaces/r{tag}-admin{tag}", body={})


def release_locks(kube: KubeClient, namespace: str) -> list[str]:
    """The release locks (Leases) left in the platform's namespace."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    names = [i["metadata"]["name"] for i in kube.request_sync("GET", path)["items"]]
    return [n for n in names if n.startswith("onyxia-release-")]


def test_a_delete_through_another_replica_stops_the_install(
    tmp_path: Path, kube_settings: KubernetesSettings, kube: KubeClient, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    timeout = 120  # Helm would wait this long for pods that never come
    fixtures = [{"id": "fixtures", "name": "Fixtures", "location": str(FIXTURES)}]
    replicas = two_replicas(
        tmp_path, kube_settings, namespace, tag, catalogs=fixtures, helm_timeout=timeout
    )
    with replicas as (a, b, project):
        # The chart's root container is refused by the project's Pod Security level: Helm
        # waits for pods that never come, holding the release's lock (a Lease) meanwhile.
        made = a.post(
            f"/api/projects/{project}/services",
            json={"catalog": "fixtures", "chart": "hello", "values": {}},
        )
        assert made.status_code == 202, made.text
        release = made.json()["release"]
        eventually(lambda: len(release_locks(kube, namespace)) == 1, 30)
        started = time.monotonic()
        gone = b.delete(f"/api/projects/{project}/services/{release}")
        took = time.monotonic() - started
        assert gone.status_code == 204, gone.text
        assert took < timeout / 4, f"the DELETE waited {took:.1f} s for the install"
        # The replica that installed says how its launch ended.
        last = phases(a, made.json()["events_url"])[-1]
        assert (last["phase"], last["message"]) == ("failed", "deleted before it was ready")
        assert eventually_clean(kube, project, release) == []
        assert release_locks(kube, namespace) == []
        assert release not in {s["id"] for s in a.get(f"/api/projects/{project}/services").json()}
    with contextlib.suppress(NotFound):
        kube.request_sync("DELETE", f"/api/v1/namespaces/r{tag}-admin{tag}", body={})


def test_a_replica_without_a_cluster_starts_and_its_jobs_wait(tmp_path: Path) -> None:
    nowhere = tmp_path / "kubeconfig"
    nowhere.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    (port,) = free_ports(1)
    settings = Settings(
        server=ServerSettings(port=port, public_url=f"http://127.0.0.1:{port}"),
        kubernetes=KubernetesSettings(kubeconfig=nowhere),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}"),
        catalogs=CatalogSettings(paths=[], cache_dir=tmp_path / "cache"),
    )
    app = create_app(settings)
    with ServedApp(app, port) as replica:
        assert httpx.get(f"{replica.url}/healthz").json() == {"status": "ok"}
        time.sleep(1)
        assert not leading(app)
        assert not app.state.platform.culler.running
