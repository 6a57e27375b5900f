"""The Helm engine (real Helm v4, in-process) against the real API server."""

from __future__ import annotations

import asyncio

import pytest

from onyxia_py.errors import Forbidden, Invalid, NotFound
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.settings import HelmSettings, KubernetesSettings

from ..conftest import FIXTURES

HELLO = FIXTURES / "charts" / "hello"
PORTS_WITHOUT_PROTOCOL = FIXTURES / "charts" / "portnoproto"


@pytest.fixture
def engine(kube_settings: KubernetesSettings) -> SdkHelmEngine:
    return SdkHelmEngine(HelmSettings(timeout_seconds=60), kubeconfig=kube_settings.kubeconfig)


async def running_pods(kube: KubeClient, namespace: str, release: str) -> list[str]:
    pods = await kube.list("Pod", namespace, label_selector=f"app.kubernetes.io/instance={release}")
    return [p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"]


async def test_ports_without_protocol_install(
    engine: SdkHelmEngine, kube: KubeClient, namespace: str
) -> None:
    """A Service port that omits `protocol` (a Bitnami PostgreSQL sub-chart writes them so) is
    accepted by server-side apply and defaulted to TCP; Kubernetes 1.20 refused it."""
    info = await engine.install(
        PORTS_WITHOUT_PROTOCOL, release="pg", namespace=namespace, values={}
    )
    assert info.status == "deployed"
    service = await kube.get("Service", "pg", namespace)
    assert [p["protocol"] for p in service["spec"]["ports"]] == ["TCP", "TCP"]
    upgraded = await engine.upgrade(
        PORTS_WITHOUT_PROTOCOL, release="pg", namespace=namespace, values={}
    )
    assert upgraded.revision == 2


async def test_install_list_status_values_uninstall(
    engine: SdkHelmEngine, kube: KubeClient, namespace: str
) -> None:
    info = await engine.install(
        HELLO, release="hello", namespace=namespace, values={"message": "bonjour"}, wait=True
    )
    assert (info.name, info.namespace, info.revision, info.status) == (
        "hello",
        namespace,
        1,
        "deployed",
    )
    assert info.chart == "hello"
    assert info.chart_version == "0.1.0"
    # `wait` returned: the simulated node runs the pod.
    assert len(await running_pods(kube, namespace, "hello")) == 1

    listed = await engine.list(namespace)
    assert [r.name for r in listed] == ["hello"]
    status = await engine.status("hello", namespace=namespace)
    assert status.notes.strip() == "hello says bonjour."
    assert await engine.get_values("hello", namespace=namespace) == {"message": "bonjour"}
    all_values = await engine.get_values("hello", namespace=namespace, all_values=True)
    assert all_values["image"] == "busybox:1.36"

    upgraded = await engine.upgrade(
        HELLO, release="hello", namespace=namespace, values={"replicas": 2}, wait=True
    )
    assert upgraded.revision == 2
    assert len(await running_pods(kube, namespace, "hello")) == 2

    await engine.uninstall("hello", namespace=namespace)
    assert await engine.list(namespace) == []
    with pytest.raises(NotFound):
        await kube.get("Deployment", "hello", namespace)
    for _ in range(40):
        if not await running_pods(kube, namespace, "hello"):
            break
        await asyncio.sleep(0.25)
    assert await running_pods(kube, namespace, "hello") == []


async def test_render_needs_no_cluster(engine: SdkHelmEngine) -> None:
    manifests = await engine.render(HELLO, {"message": "hi"}, release="r1", namespace="user-alice")
    assert "name: r1-message" in manifests["hello/templates/configmap.yaml"]


async def test_schema_violations_are_invalid(engine: SdkHelmEngine, namespace: str) -> None:
    with pytest.raises(Invalid, match="replicas") as caught:
        await engine.install(
            HELLO, release="too-big", namespace=namespace, values={"replicas": 10}, wait=False
        )
    assert [e.field for e in caught.value.errors] == ["replicas"]
    assert "maximum" in caught.value.errors[0].reason
    assert await engine.list(namespace) == []


async def test_impersonated_install_is_bound_by_rbac(engine: SdkHelmEngine, namespace: str) -> None:
    with pytest.raises(Forbidden):
        await engine.install(
            HELLO,
            release="sneaky",
            namespace=namespace,
            values={},
            as_=Impersonation("mallory", ("team-a",)),
            wait=False,
        )
    assert await engine.list(namespace) == []


async def test_missing_release(engine: SdkHelmEngine, namespace: str) -> None:
    with pytest.raises(NotFound):
        await engine.status("ghost", namespace=namespace)
    await engine.uninstall("ghost", namespace=namespace, missing_ok=True)
