"""GPU availability for launch forms."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from onyxia_py.api.deps import KubeDep, Reader
from onyxia_py.services.gpus import availability

router = APIRouter(prefix="/api", tags=["services"])


class GpuOut(BaseModel):
    """One GPU product across the cluster."""

    product: str
    nodes: int
    capacity: int
    allocated: int
    free: int


@router.get("/gpus", summary="GPUs per product: capacity, allocated, free")
async def gpus(_user: Reader, kube: KubeDep) -> list[GpuOut]:
    """What the cluster's GPU nodes offer and how much is taken, per `nvidia.com/gpu.product`."""
    nodes = await kube.list("Node")
    pods = await kube.list("Pod", field_selector="spec.nodeName!=")
    return [
        GpuOut(
            product=g.product,
            nodes=g.nodes,
            capacity=g.capacity,
            allocated=g.allocated,
            free=g.free,
        )
        for g in availability(nodes, pods)
    ]
