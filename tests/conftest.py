"""Shared fixtures. Integration fixtures start real servers on 127.0.0.1, once per session:
the local Kubernetes control plane (unless ONYXIA_TEST_KUBECONFIG names a cluster) and
PostgreSQL. Each integration test gets its own namespace, deleted afterwards."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.localcluster import ClusterError, LocalCluster, NodeSpec
from devtools.localpg import LocalPostgres
from devtools.localrgw import LocalRgw
from onyxia_py.kube import KubeClient
from onyxia_py.projects.objects import pod_security_labels
from onyxia_py.settings import DatabaseSettings, KubernetesSettings, Settings

FIXTURES = Path(__file__).parent / "fixtures"
BROWSER_TESTS = Path(__file__).parent / "browser"


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster | None]:
    """The local control plane started for this run (None with ONYXIA_TEST_KUBECONFIG)."""
    if os.environ.get("ONYXIA_TEST_KUBECONFIG"):
        yield None
        return
    state = Path(tempfile.mkdtemp(prefix="onyxia-test-cluster-"))
    cluster = LocalCluster(state, NodeSpec(count=1, gpus=2, gpu_nodes=1))
    try:
        cluster.start()
    except ClusterError as first:
        # A start can trip on a port taken between choosing and binding it; one retry, loudly.
        print(f"local cluster failed to start, retrying once: {first}", file=sys.stderr)
        cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kubeconfig(local_cluster: LocalCluster | None) -> Path:
    """A kubeconfig with cluster-admin rights on a real API server."""
    if local_cluster is None:
        return Path(os.environ["ONYXIA_TEST_KUBECONFIG"])
    return local_cluster.kubeconfig


@pytest.fixture(scope="session")
def kube_settings(kubeconfig: Path) -> KubernetesSettings:
    """Kubernetes settings pointing at the test cluster."""
    return KubernetesSettings(kubeconfig=kubeconfig)


@pytest.fixture(scope="session")
def kube(kube_settings: KubernetesSettings) -> Iterator[KubeClient]:
    """A Kubernetes client acting as the platform (cluster-admin in tests)."""
    client = KubeClient(kube_settings)
    yield client
    client.close()


def _fresh_namespace(kube: KubeClient, labels: dict[str, str]) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    meta = {"name": name, "labels": labels}
    kube.request_sync(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": meta},
    )
    yield name
    kube.request_sync(
        "DELETE", f"/api/v1/namespaces/{name}", body={"propagationPolicy": "Background"}
    )


@pytest.fixture
def namespace(kube: KubeClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted after it."""
    yield from _fresh_namespace(kube, {})


@pytest.fixture
def restricted_namespace(kube: KubeClient) -> Iterator[str]:
    """A fresh namespace that enforces the `restricted` Pod Security Standard, as projects do."""
    yield from _fresh_namespace(kube, pod_security_labels("restricted"))


@pytest.fixture(scope="session")
def rgw() -> Iterator[LocalRgw]:
    """A Ceph RADOS Gateway (S3 with STS) for the session, started on first use (2 to 4 s)."""
    with LocalRgw() as server:
        yield server


@pytest.fixture(scope="module")
def tag() -> str:
    """Keeps one module's buckets, roles and namespaces apart from the others'."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database on a free port."""
    with LocalPostgres() as server:
        yield server.url


@pytest.fixture
def settings(tmp_path: Path, kube_settings: KubernetesSettings) -> Settings:
    """Settings for an app on the test cluster with a fresh SQLite database."""
    return Settings(
        kubernetes=kube_settings,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'onyxia.db'}"),
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration are marked `integration`. Browser tests run last:
    Playwright's sync API keeps an event loop running in the main thread while its browser is
    open, and `asyncio.run` refuses to start under it."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.path.is_relative_to(BROWSER_TESTS))
