"""A real Kubernetes control plane with simulated nodes, for development and tests."""

from .binaries import BinariesError, ensure_binaries, find_etcd
from .cluster import ClusterError, LocalCluster
from .nodespec import NodeSpec

__all__ = [
    "BinariesError",
    "ClusterError",
    "LocalCluster",
    "NodeSpec",
    "ensure_binaries",
    "find_etcd",
]
