"""GPU availability per product, from nodes' allocatable GPUs and the pods bound to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onyxia_py.quantities import parse_quantity

GPU = "nvidia.com/gpu"
PRODUCT_LABEL = "nvidia.com/gpu.product"
_FINISHED = {"Succeeded", "Failed"}


@dataclass(frozen=True)
class GpuAvailability:
    """One GPU product across the cluster."""

    product: str
    nodes: int
    capacity: int
    allocated: int

    @property
    def free(self) -> int:
        """GPUs not requested by any running or pending pod."""
        return max(self.capacity - self.allocated, 0)


def _pod_gpus(pod: dict[str, Any]) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        amount = (resources.get("limits") or {}).get(GPU) or (resources.get("requests") or {}).get(
            GPU
        )
        if amount is not None:
            total += int(parse_quantity(amount))
    return total


def availability(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[GpuAvailability]:
    """Capacity, allocation and free GPUs per product (nodes without the label: 'unknown')."""
    product_of: dict[str, str] = {}
    capacity: dict[str, int] = {}
    node_count: dict[str, int] = {}
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        if GPU not in allocatable:
            continue
        name = node["metadata"]["name"]
        product = (node["metadata"].get("labels") or {}).get(PRODUCT_LABEL, "unknown")
        product_of[name] = product
        capacity[product] = capacity.get(product, 0) + int(parse_quantity(allocatable[GPU]))
        node_count[product] = node_count.get(product, 0) + 1
    allocated: dict[str, int] = dict.fromkeys(capacity, 0)
    for pod in pods:
        node_name = str((pod.get("spec") or {}).get("nodeName"))
        if node_name not in product_of or (pod.get("status") or {}).get("phase") in _FINISHED:
            continue
        allocated[product_of[node_name]] += _pod_gpus(pod)
    return [GpuAvailability(p, node_count[p], capacity[p], allocated[p]) for p in sorted(capacity)]
