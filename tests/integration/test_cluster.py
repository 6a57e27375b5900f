"""The local control plane behaves like a cluster: pods run, namespaces go away."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient


async def test_nodes_are_ready_and_offer_gpus(kube: KubeClient) -> None:
    nodes = await kube.list("Node")
    assert nodes
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True"
        assert not node["spec"].get("taints")
    gpu_nodes = [n for n in nodes if "nvidia.com/gpu" in n["status"]["capacity"]]
    assert gpu_nodes
    assert "nvidia.com/gpu.product" in gpu_nodes[0]["metadata"]["labels"]


async def test_namespace_deletion_completes(kube: KubeClient) -> None:
    name = f"t-del-{secrets.token_hex(3)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        }
    )
    await kube.delete("Namespace", name)
    for _ in range(120):
        try:
            await kube.get("Namespace", name)
        except NotFound:
            return
        await asyncio.sleep(0.5)
    pytest.fail(f"namespace {name} was still there after 60 s")


async def test_claims_get_volumes_and_pods_using_them_run(kube: KubeClient, namespace: str) -> None:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "home", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        }
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "ide", "namespace": namespace},
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "busybox:1.36",
                        "volumeMounts": [{"name": "home", "mountPath": "/home"}],
                    }
                ],
                "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}],
            },
        }
    )
    for _ in range(60):
        claim = await kube.get("PersistentVolumeClaim", "home", namespace)
        pod = await kube.get("Pod", "ide", namespace)
        if claim["status"].get("phase") == "Bound" and pod["status"].get("phase") == "Running":
            break
        await asyncio.sleep(0.5)
    assert claim["status"]["phase"] == "Bound"
    assert pod["status"]["phase"] == "Running"
