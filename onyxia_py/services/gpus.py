"""GPU availability per product, from nodes' allocatable GPUs and the pods bound to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onyxia_py.errors import NoCapacity
from onyxia_py.quantities import parse_quantity
from onyxia_py.services.quota import pod_spec

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


def check_capacity(objects: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> None:
    """Refuse pods asking for more GPUs than the largest node (of the product they select)
    offers, before anything is made, as the quota pre-flight does."""
    for obj in objects:
        found = pod_spec(obj)
        if found is None or found[1] <= 0:
            continue
        pod = found[0]
        wanted = _pod_gpus({"spec": pod})
        if wanted == 0:
            continue
        product = (pod.get("nodeSelector") or {}).get(PRODUCT_LABEL)
        largest = _largest_offer(nodes, product)
        if wanted > largest:
            kind = f"{product} " if product else ""
            offer = (
                f"the largest {kind}node offers {largest}"
                if largest
                else f"no {kind}node offers GPUs"
            )
            raise NoCapacity(
                f"requested {wanted} GPU; {offer}",
                resources={f"requests.{GPU}": f"requested {wanted} GPU; {offer}"},
            )


def _largest_offer(nodes: list[dict[str, Any]], product: str | None) -> int:
    largest = 0
    for node in nodes:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        labels = node.get("metadata", {}).get("labels") or {}
        if GPU not in allocatable or (product and labels.get(PRODUCT_LABEL) != product):
            continue
        largest = max(largest, int(parse_quantity(allocatable[GPU])))
    return largest
