"""Write the admin kubeconfig and turn it back into an HTTP client."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

CONTEXT = "onyxia-local"


@dataclass(frozen=True)
class ClientConfig:
    """What an HTTP client needs to talk to the API server as admin."""

    server: str
    token: str
    ca_file: Path | None

    def verify(self) -> ssl.SSLContext | bool:
        """Return the httpx ``verify`` value: the CA context, or False to skip verification."""
        if self.ca_file is None:
            return False
        return ssl.create_default_context(cafile=str(self.ca_file))

    def client(self, timeout: float | None = 10.0) -> httpx.Client:
        """Return an httpx client authenticated with the admin token."""
        return httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=self.verify(),
            timeout=httpx.Timeout(timeout),
        )


def write_kubeconfig(path: Path, server: str, token: str, ca_file: Path | None) -> None:
    """Write a single-context kubeconfig for the admin token user (mode 0600)."""
    cluster: dict[str, Any] = {"server": server}
    if ca_file is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority"] = str(ca_file)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [
            {
                "name": CONTEXT,
                "context": {"cluster": CONTEXT, "user": "admin", "namespace": "default"},
            }
        ],
        "current-context": CONTEXT,
        "preferences": {},
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False)
    tmp.replace(path)


def load_client_config(path: Path) -> ClientConfig:
    """Read the server, token and CA of the current context of a token kubeconfig."""
    doc = yaml.safe_load(path.read_text())
    current = doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
    ca = cluster.get("certificate-authority")
    if cluster.get("insecure-skip-tls-verify"):
        ca = None
    return ClientConfig(
        server=cluster["server"], token=user["token"], ca_file=Path(ca) if ca else None
    )
