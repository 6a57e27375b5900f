"""Pods reach the pod network and the gateway (the platform's own servers), nothing else: not
another host address, not an address outside the machine's networks."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from devtools.localcluster import LocalCluster

from .helpers import create, namespace, pod_exec, wait_pod_ready, webtest_pod

OUTSIDE = "10.99.0.1:80"  # routed nowhere: dropped inside the node before it leaves


@contextmanager
def listening(host: str) -> Iterator[int]:
    """A TCP listener on host (a free port) that accepts and closes connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(8)
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        sock.close()


def other_host_address(gateway: str) -> str | None:
    """An IPv4 address of this machine that is neither loopback nor an onyxia bridge's."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        words = line.split()
        addr = words[3].split("/")[0]
        if not addr.startswith(("127.", "10.88.")) and addr != gateway:
            return addr
    return None


def test_pods_reach_the_gateway_and_nothing_else(
    real_cluster: LocalCluster, real_api: httpx.Client
) -> None:
    kc, gateway = real_cluster.kubeconfig, real_cluster.pod_gateway
    with namespace(real_api) as ns:
        create(
            real_api, f"/api/v1/namespaces/{ns}/pods", webtest_pod("probe", real_cluster.test_image)
        )
        wait_pod_ready(real_api, ns, "probe")

        def dial(addr: str) -> str:
            return pod_exec(kc, ns, "probe", ["/webtest", "dial", addr])

        with listening(gateway) as port:
            assert dial(f"{gateway}:{port}") == "connected\n"
        # The API server, through the `kubernetes` Service (the gateway, DNATed to loopback).
        api_ip = real_api.get("/api/v1/namespaces/default/services/kubernetes").json()
        assert dial(f"{api_ip['spec']['clusterIP']}:443") == "connected\n"
        assert "i/o timeout" in dial(OUTSIDE)
        other = other_host_address(gateway)
        if other:
            with listening(other) as port:
                assert "i/o timeout" in dial(f"{other}:{port}")
