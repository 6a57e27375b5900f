"""The nodes a local cluster offers: simulated ones (count) and real ones (real)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSpec:
    """Simulated nodes (how many, their capacity, how many carry GPUs) and real nodes."""

    count: int = 1
    cpu: str = "32"
    memory: str = "128Gi"
    pods: int = 110
    gpus: int = 4
    gpu_nodes: int = 1
    gpu_product: str = "NVIDIA-A100-SXM4-40GB"
    ephemeral_storage: str = "200Gi"
    # Real nodes: kubelet + containerd + kube-proxy, each node in its own network namespace.
    real: int = 0
    real_max_pods: int = 110
    ingress_port: int = 0  # the local ingress's port on 127.0.0.1; 0 = a free port
    dns: bool = True  # start the cluster DNS (dns.py) with real nodes
    ingress: bool = True  # start the local ingress (ingress.py) with real nodes

    def __post_init__(self) -> None:
        if self.count < 0 or self.real < 0:
            raise ValueError("node counts cannot be negative")

    def node_names(self) -> list[str]:
        """Return the names of the simulated nodes."""
        return [f"sim-node-{i}" for i in range(self.count)]

    def real_node_names(self) -> list[str]:
        """Return the names of the real nodes."""
        return [f"real-node-{i}" for i in range(self.real)]

    def cli_args(self) -> list[str]:
        """Return the simnode command-line options describing this spec."""
        return [
            "--nodes",
            str(self.count),
            "--cpu",
            self.cpu,
            "--memory",
            self.memory,
            "--pods",
            str(self.pods),
            "--gpus",
            str(self.gpus),
            "--gpu-nodes",
            str(self.gpu_nodes),
            "--gpu-product",
            self.gpu_product,
            "--ephemeral-storage",
            self.ephemeral_storage,
        ]
