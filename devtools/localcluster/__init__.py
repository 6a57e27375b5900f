"""A real Kubernetes control plane with simulated and/or real nodes, for development and tests."""

from .binaries import BinariesError, ensure_binaries, find_etcd
from .cluster import LocalCluster
from .errors import ClusterError
from .nodespec import NodeSpec
from .realcheck import real_nodes_possible

__all__ = [
    "BinariesError",
    "ClusterError",
    "LocalCluster",
    "NodeSpec",
    "ensure_binaries",
    "find_etcd",
    "real_nodes_possible",
]
