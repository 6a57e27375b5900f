"""Helpers for tests on real nodes: manifests of the `webtest` image, waits, exec and logs
through the API server (exec over its WebSocket, as kubectl does)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.stream import stream

from devtools.localcluster import LocalCluster

JSON = dict[str, Any]
WEB_PORT = 8080


def api(cluster: LocalCluster) -> httpx.Client:
    """An admin HTTP client on the cluster's API server."""
    return cluster.client_config().client(timeout=30.0)


def create(client: httpx.Client, path: str, body: JSON) -> JSON:
    """POST an object; fail loudly unless it is created."""
    r = client.post(path, json=body)
    assert r.status_code == 201, f"POST {path}: HTTP {r.status_code} {r.text[:300]}"
    created: JSON = r.json()
    return created


@contextmanager
def namespace(client: httpx.Client) -> Iterator[str]:
    """A fresh namespace, deleted (in the background) afterwards."""
    name = f"t-real-{secrets.token_hex(3)}"
    create(client, "/api/v1/namespaces", {"metadata": {"name": name}})
    try:
        yield name
    finally:
        client.delete(f"/api/v1/namespaces/{name}")


def webtest_pod(
    name: str,
    image: str,
    labels: dict[str, str] | None = None,
    volumes: list[JSON] | None = None,
    mounts: list[JSON] | None = None,
) -> JSON:
    """A pod serving HTTP on 8080 as uid 1000 / gid 100 (fsGroup 100), restricted-compliant."""
    return {
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "nodeSelector": {"type": "real"},
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 100,
                "fsGroup": 100,
                "fsGroupChangePolicy": "OnRootMismatch",
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "web",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "ports": [{"containerPort": WEB_PORT}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": WEB_PORT},
                        "periodSeconds": 1,
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": mounts or [],
                }
            ],
            "volumes": volumes or [],
        },
    }


def wait_pod_ready(client: httpx.Client, ns: str, name: str, timeout: float = 90.0) -> JSON:
    """Wait until the pod is Ready; return it (fail with its status otherwise)."""
    deadline = time.monotonic() + timeout
    pod: JSON = {}
    while time.monotonic() < deadline:
        pod = client.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()
        conds = pod.get("status", {}).get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
            return pod
        time.sleep(0.3)
    raise AssertionError(f"pod {ns}/{name} not Ready after {timeout:.0f}s: {pod.get('status')}")


def wait_gone(client: httpx.Client, path: str, timeout: float = 60.0) -> None:
    """Wait until GET path answers 404."""
    deadline = time.monotonic() + timeout
    while client.get(path).status_code != 404:
        assert time.monotonic() < deadline, f"{path} still there after {timeout:.0f}s"
        time.sleep(0.3)


def pod_exec(kubeconfig: Path, ns: str, name: str, argv: list[str]) -> str:
    """Run argv in the pod's first container through the API server; return its output."""
    # The kubernetes client is untyped; its exec stream is what kubectl exec speaks.
    api_client = k8s_config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
    core = k8s.CoreV1Api(api_client=api_client)
    out: str = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        ns,
        command=argv,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    return out
