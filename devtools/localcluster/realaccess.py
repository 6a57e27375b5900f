"""What tests and tools ask a local cluster about its real nodes (a mixin of LocalCluster)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ClusterError
from .images import WEBTEST_IMAGE
from .realnodes import RealNodes


class RealNodeAccess:
    """The real nodes' names, gateway, containerd sockets, image import and ingress address."""

    _real: RealNodes
    state_dir: Path
    test_image = WEBTEST_IMAGE  # imported into every real node: `webtest` (devtools/pause)

    def _real_state(self) -> RealNodes:
        if not self._real.load():
            raise ClusterError(f"no real nodes recorded in {self.state_dir}")
        return self._real

    @property
    def real_nodes(self) -> list[str]:
        """The names of the real nodes (empty for a simulated-only cluster)."""
        return self._real.names if self._real.load() else []

    @property
    def pod_gateway(self) -> str:
        """The host address pods reach host servers at (cluster DNS, the platform's servers)."""
        return self._real_state().plan.gateway

    @property
    def pod_cidr(self) -> str:
        """The real nodes' pod network."""
        return self._real_state().plan.pod_cidr

    def containerd_socket(self, node: str) -> Path:
        """The containerd socket of a real node (``ctr --address`` for image imports)."""
        real = self._real_state()
        return real.layout(real.names.index(node)).socket

    def import_image(self, archive: Path) -> None:
        """Import an OCI or Docker image archive into every real node's containerd."""
        self._real_state().import_image(archive)

    @property
    def ingress_address(self) -> str:
        """host:port of the local ingress (nginx fed from Ingress objects): 127.0.0.1:PORT."""
        try:
            return str(json.loads(self._real.ingress_file.read_text())["address"])
        except (OSError, ValueError, KeyError) as e:
            raise ClusterError(f"no ingress recorded in {self._real.ingress_file}") from e
