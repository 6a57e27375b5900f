"""Which claims the local-path provisioner serves, and the volume it makes for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.localcluster.localpath import (
    PROVISIONED_BY,
    PROVISIONER,
    SELECTED_NODE,
    STORAGE_CLASS,
    storage_class,
    volume_for,
    wants_volume,
)

NODES = ["real-node-0", "real-node-1"]


def claim(**spec: Any) -> dict[str, Any]:
    annotations = spec.pop("annotations", {})
    return {
        "metadata": {"name": "data", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {"storageClassName": STORAGE_CLASS, **spec},
        "status": {"phase": "Pending"},
    }


def test_the_class_is_default_and_waits_for_the_first_consumer() -> None:
    sc = storage_class()
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Delete"


def test_a_claim_is_served_on_the_node_the_scheduler_chose() -> None:
    assert wants_volume(claim(), NODES, immediate=False) is None
    chosen = claim(annotations={SELECTED_NODE: "real-node-1"})
    assert wants_volume(chosen, NODES, immediate=False) == "real-node-1"
    assert wants_volume(claim(), NODES, immediate=True) == "real-node-0"


def test_claims_that_are_not_ours_are_left_alone() -> None:
    on_sim = claim(annotations={SELECTED_NODE: "sim-node-0"})
    assert wants_volume(on_sim, NODES, immediate=False) is None
    other = claim(annotations={SELECTED_NODE: "real-node-0"})
    other["spec"]["storageClassName"] = "fast"
    assert wants_volume(other, NODES, immediate=False) is None
    bound = claim(volumeName="pv-1", annotations={SELECTED_NODE: "real-node-0"})
    assert wants_volume(bound, NODES, immediate=False) is None
    block = claim(volumeMode="Block", annotations={SELECTED_NODE: "real-node-0"})
    assert wants_volume(block, NODES, immediate=False) is None


def test_the_volume_is_local_pinned_and_pre_bound() -> None:
    c = claim(resources={"requests": {"storage": "5Gi"}}, accessModes=["ReadWriteOnce"])
    pv = volume_for(c, "real-node-0", Path("/v/pvc-u1"), "Delete")
    assert pv["metadata"]["name"] == "pvc-u1"
    assert pv["metadata"]["annotations"][PROVISIONED_BY] == PROVISIONER
    spec = pv["spec"]
    assert spec["local"] == {"path": "/v/pvc-u1"}
    assert spec["capacity"] == {"storage": "5Gi"}
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["real-node-0"]}
    assert spec["claimRef"]["uid"] == "u1"
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
