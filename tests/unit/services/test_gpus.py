"""GPU capacity: a pod asking for more GPUs than any node offers is refused before anything."""

from __future__ import annotations

from typing import Any

import pytest

from onyxia_py.errors import NoCapacity
from onyxia_py.services.gpus import check_capacity


def node(name: str, gpus: int, product: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product}},
        "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": str(gpus)}},
    }


def workload(gpus: int, product: str | None = None, replicas: int = 1) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]
    }
    if product:
        pod["nodeSelector"] = {"nvidia.com/gpu.product": product}
    return {"kind": "StatefulSet", "spec": {"replicas": replicas, "template": {"spec": pod}}}


NODES = [node("a", 2, "Tesla-T4"), node("b", 4, "A100"), {"metadata": {"name": "cpu"}}]


def test_a_pod_that_fits_the_largest_node_passes() -> None:
    check_capacity([workload(4)], NODES)
    check_capacity([workload(2, "Tesla-T4", replicas=3)], NODES)  # one pod per node: each fits


def test_more_gpus_than_the_largest_node_of_the_product_is_refused() -> None:
    with pytest.raises(NoCapacity) as refused:
        check_capacity([workload(3, "Tesla-T4")], NODES)
    assert refused.value.detail == "requested 3 GPU; the largest Tesla-T4 node offers 2"
    assert refused.value.status == 422


def test_more_gpus_than_any_node_is_refused() -> None:
    with pytest.raises(NoCapacity, match="requested 5 GPU; the largest node offers 4"):
        check_capacity([workload(5)], NODES)


def test_without_gpu_nodes_a_gpu_request_is_refused() -> None:
    with pytest.raises(NoCapacity, match="requested 1 GPU; no node offers GPUs"):
        check_capacity([workload(1)], [{"metadata": {"name": "cpu"}}])
    with pytest.raises(NoCapacity, match="no H100 node offers GPUs"):
        check_capacity([workload(1, "H100")], NODES)
