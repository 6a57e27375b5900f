"""The real nodes' helper process: the local-path provisioner, and the node lifecycle work the
harness's controller-manager does not do (it runs without the node lifecycle controller), that is
lifting the not-ready taint from real nodes once their kubelet reports Ready.

Run: ``python -m devtools.localcluster.nodeagent --kubeconfig K --volumes DIR --node NAME...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from .kubeconfig import load_client_config
from .localpath import LocalPathProvisioner

log = logging.getLogger("nodeagent")
LIFTED = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
MERGE = {"Content-Type": "application/merge-patch+json"}


def is_ready(node: dict[str, Any]) -> bool:
    """Tell whether the node's Ready condition is True."""
    conds = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def lifted_taints(node: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The node's taints without the lifecycle ones, or None when nothing is to change."""
    taints: list[dict[str, Any]] = node.get("spec", {}).get("taints") or []
    kept = [t for t in taints if t.get("key") not in LIFTED]
    return kept if len(kept) != len(taints) and is_ready(node) else None


def lift_taints(client: httpx.Client, names: list[str]) -> None:
    """Remove lifecycle taints from Ready real nodes (optimistic: guarded by resourceVersion)."""
    for name in names:
        r = client.get(f"/api/v1/nodes/{name}")
        if r.status_code != 200:
            continue
        node = r.json()
        kept = lifted_taints(node)
        if kept is None:
            continue
        patch = {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": kept or None},
        }
        r = client.patch(f"/api/v1/nodes/{name}", content=json.dumps(patch), headers=MERGE)
        if r.status_code == 200:
            log.info("node %s Ready: lifted its not-ready taint", name)
        elif r.status_code != 409:
            log.warning("node %s: HTTP %s %s", name, r.status_code, r.text[:200])


def main(argv: list[str] | None = None) -> int:
    """Provision volumes and lift taints once a second until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    p = argparse.ArgumentParser(prog="python -m devtools.localcluster.nodeagent")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--volumes", type=Path, required=True, help="where volume directories go")
    p.add_argument("--node", action="append", required=True, help="a real node (repeatable)")
    p.add_argument("--period", type=float, default=1.0)
    a = p.parse_args(argv)
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    a.volumes.mkdir(parents=True, exist_ok=True)
    with load_client_config(a.kubeconfig).client(timeout=10.0) as client:
        volumes = LocalPathProvisioner(client, a.volumes.absolute(), list(a.node))
        while not stopping.is_set():
            try:
                volumes.ensure_storage_class()
                break
            except httpx.HTTPError as e:
                log.warning("storage class: %s", e)
                stopping.wait(a.period)
        while not stopping.wait(a.period):
            try:
                lift_taints(client, list(a.node))
                volumes.sync()
            except (httpx.HTTPError, ValueError, KeyError) as e:
                log.warning("sync failed: %s", e)
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
