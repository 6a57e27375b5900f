"""The shape of the simulated nodes a local cluster offers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSpec:
    """Simulated nodes: how many, their capacity, and how many of them carry GPUs."""

    count: int = 1
    cpu: str = "32"
    memory: str = "128Gi"
    pods: int = 110
    gpus: int = 4
    gpu_nodes: int = 1
    gpu_product: str = "NVIDIA-A100-SXM4-40GB"
    ephemeral_storage: str = "200Gi"

    def node_names(self) -> list[str]:
        """Return the names of the simulated nodes."""
        return [f"sim-node-{i}" for i in range(self.count)]

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
