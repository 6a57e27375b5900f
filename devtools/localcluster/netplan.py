"""The addresses and names of one local cluster's real-node network, derived from its index.

Each cluster that runs real nodes takes a free index N (0..7) so two clusters on one machine
never share a name or an address:

- host bridge ``onyxia<N>`` with the gateway ``10.88.N.1/24`` (the host address pods and nodes
  reach; the platform's test servers and the cluster DNS listen there);
- real node k lives in its own network namespace, joined to that bridge by a veth pair
  (``onyxia<N>v<k>`` on the host, ``lan0`` inside) with the node IP ``10.88.N.(10+k)``;
- node k's pods use the bridge ``pods0`` inside its namespace, subnet ``10.(100+N).k.0/24``
  (the cluster's pod CIDR is ``10.(100+N).0.0/16``);
- Services get ClusterIPs from ``10.(110+N).0.0/16``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MAX_CLUSTERS = 8
MAX_NODES = 8
POD_BRIDGE = "pods0"
NODE_LINK = "lan0"


@dataclass(frozen=True)
class NetPlan:
    """Names and addresses of cluster network ``index`` with ``nodes`` real nodes."""

    index: int
    nodes: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < MAX_CLUSTERS:
            raise ValueError(f"network index {self.index} not in 0..{MAX_CLUSTERS - 1}")
        if not 0 <= self.nodes <= MAX_NODES:
            raise ValueError(f"{self.nodes} real nodes: at most {MAX_NODES}")

    @property
    def bridge(self) -> str:
        """The host bridge joining the nodes' namespaces."""
        return f"onyxia{self.index}"

    @property
    def gateway(self) -> str:
        """The host's address on the bridge: what pods use to reach host servers."""
        return f"10.88.{self.index}.1"

    @property
    def lan_cidr(self) -> str:
        """The subnet of the bridge (gateway and node IPs)."""
        return f"10.88.{self.index}.0/24"

    @property
    def pod_cidr(self) -> str:
        """The pod CIDR of the whole cluster (every node's pod subnet is inside)."""
        return f"10.{100 + self.index}.0.0/16"

    @property
    def service_cidr(self) -> str:
        """The ClusterIP range of the cluster's API server."""
        return f"10.{110 + self.index}.0.0/16"

    @property
    def kubernetes_service_ip(self) -> str:
        """The ClusterIP of the ``kubernetes`` Service (first address of the range)."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def host_table(self) -> str:
        """The nftables table (family ip) holding this cluster's host rules."""
        return f"onyxia{self.index}"

    def node_ip(self, k: int) -> str:
        """Node k's address on the bridge (its InternalIP, where its kubelet listens)."""
        return f"10.88.{self.index}.{10 + self._check(k)}"

    def node_pod_cidr(self, k: int) -> str:
        """The pod subnet of node k."""
        return f"10.{100 + self.index}.{self._check(k)}.0/24"

    def node_pod_gateway(self, k: int) -> str:
        """The address of node k's pod bridge (its pods' default route)."""
        return f"10.{100 + self.index}.{self._check(k)}.1"

    def host_veth(self, k: int) -> str:
        """The host end of node k's veth pair."""
        return f"onyxia{self.index}v{self._check(k)}"

    def network_name(self, k: int) -> str:
        """The CNI network name of node k (prefix of libcni's cache files)."""
        return f"onyxia{self.index}-{self._check(k)}"

    def cgroup_root(self, k: int) -> str:
        """The cgroup (in every v1 hierarchy) under which node k's kubelet puts pods."""
        return f"/onyxia{self.index}n{self._check(k)}"

    def _check(self, k: int) -> int:
        if not 0 <= k < self.nodes:
            raise ValueError(f"node {k} not in 0..{self.nodes - 1}")
        return k
