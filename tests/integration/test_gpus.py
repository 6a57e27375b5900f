"""GPU availability from the simulated GPU node and a pod that takes some."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient

from onyxia_py.app import create_app
from onyxia_py.kube import KubeClient
from onyxia_py.settings import Settings


async def test_gpu_availability(kube: KubeClient, namespace: str, settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        answer = client.get("/api/gpus")
        assert answer.status_code == 200, answer.text
        before = {g["product"]: g for g in answer.json()}
        assert before
        product, seen = next(iter(before.items()))
        assert seen["capacity"] >= 1
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "trainer", "namespace": namespace},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                    "nodeSelector": {"nvidia.com/gpu.product": product},
                },
            }
        )
        for _ in range(40):
            pod = await kube.get("Pod", "trainer", namespace)
            if pod["spec"].get("nodeName"):
                break
            await asyncio.sleep(0.25)
        after = {g["product"]: g for g in client.get("/api/gpus").json()}[product]
        assert after["allocated"] == seen["allocated"] + 1
        assert after["free"] == seen["free"] - 1
