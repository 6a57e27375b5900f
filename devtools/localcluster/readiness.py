"""Checks the local cluster polls while it starts: etcd, the API server, the controllers, nodes,
and the real nodes' helpers (cluster DNS, ingress)."""

from __future__ import annotations

import secrets
import socket
import ssl
import struct
from typing import Any

import httpx

from .kubeconfig import ClientConfig


def etcd_healthy(url: str) -> bool:
    """Tell whether etcd's /health says healthy."""
    r = httpx.get(f"{url}/health", timeout=2.0)
    return r.status_code == 200 and r.json().get("health") == "true"


def readyz(cfg: ClientConfig) -> bool:
    """Tell whether the API server answers /readyz with 200."""
    try:
        with cfg.client(timeout=2.0) as c:
            return c.get("/readyz").status_code == 200
    except (httpx.HTTPError, ssl.SSLError, OSError):
        return False


def default_sa_exists(client: httpx.Client) -> bool:
    """Tell whether the controller-manager created the default ServiceAccount."""
    return client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200


def nodes_ready(client: httpx.Client, names: list[str]) -> bool:
    """Tell whether every named simulated node is Ready and untainted."""
    r = client.get("/api/v1/nodes", params={"labelSelector": "type=simulated"})
    if r.status_code != 200:
        return False
    ready: set[str] = set()
    for node in r.json().get("items", []):
        node_any: dict[str, Any] = node
        conds = node_any.get("status", {}).get("conditions", [])
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        if is_ready and not node_any.get("spec", {}).get("taints"):
            ready.add(node_any["metadata"]["name"])
    return set(names) <= ready


def tcp_open(host: str, port: int) -> bool:
    """Tell whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def dns_answers(server: str, name: str = "kubernetes.default.svc.cluster.local") -> bool:
    """Tell whether a DNS server at server:53 answers an A query (with any response code)."""
    qid = secrets.randbits(16)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        try:
            s.sendto(query, (server, 53))
            reply = s.recv(512)
        except OSError:
            return False
    return len(reply) >= 2 and struct.unpack(">H", reply[:2])[0] == qid
