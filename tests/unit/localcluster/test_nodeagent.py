"""The node agent lifts the not-ready taint of Ready real nodes only, keeping other taints."""

from __future__ import annotations

from typing import Any

from devtools.localcluster.nodeagent import lifted_taints

NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
GPU = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}


def node(ready: bool, *taints: dict[str, str]) -> dict[str, Any]:
    status = "True" if ready else "False"
    return {
        "spec": {"taints": list(taints)},
        "status": {"conditions": [{"type": "Ready", "status": status}]},
    }


def test_ready_nodes_lose_only_the_lifecycle_taints() -> None:
    assert lifted_taints(node(True, NOT_READY, GPU)) == [GPU]
    assert lifted_taints(node(True, NOT_READY)) == []


def test_nothing_changes_otherwise() -> None:
    assert lifted_taints(node(False, NOT_READY)) is None
    assert lifted_taints(node(True, GPU)) is None
    assert lifted_taints(node(True)) is None
