"""A local-path provisioner for real nodes: claims of the default StorageClass ``local-path``
get a ``local`` PersistentVolume on a directory under the harness's volumes dir, pinned to the
node the scheduler chose (WaitForFirstConsumer); released volumes lose their data and go."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import httpx

from .simvolumes import claim_ref

log = logging.getLogger("localpath")

JSON = dict[str, Any]
PROVISIONER = "onyxia.dev/local-path"
STORAGE_CLASS = "local-path"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
# The charts run as uid 1000 with fsGroup 100; setgid keeps new files in the group.
OWNER_UID, OWNER_GID, MODE = 1000, 100, 0o2775
HEADERS = {"Content-Type": "application/json"}


def storage_class() -> JSON:
    """The default StorageClass served by this provisioner."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
    }


def volume_for(claim: JSON, node: str, path: Path, reclaim: str) -> JSON:
    """The local PersistentVolume at path on node, pre-bound to claim."""
    meta, spec = claim["metadata"], claim.get("spec", {})
    size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {PROVISIONED_BY: PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": reclaim,
            "storageClassName": STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "local": {"path": str(path)},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/hostname",
                                    "operator": "In",
                                    "values": [node],
                                }
                            ]
                        }
                    ]
                }
            },
            "claimRef": claim_ref(meta),
        },
    }


def wants_volume(claim: JSON, nodes: list[str], immediate: bool) -> str | None:
    """The node to provision claim on, or None when it is not (yet) ours to serve."""
    spec, status = claim.get("spec", {}), claim.get("status", {})
    if spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName"):
        return None
    if status.get("phase") not in (None, "Pending"):
        return None
    if spec.get("volumeMode", "Filesystem") != "Filesystem":
        return None
    selected = claim.get("metadata", {}).get("annotations", {}).get(SELECTED_NODE)
    if selected:
        return str(selected) if selected in nodes else None
    return nodes[0] if immediate and nodes else None


class LocalPathProvisioner:
    """Provisions and reclaims local volumes for the given real nodes under ``root``."""

    def __init__(self, client: httpx.Client, root: Path, nodes: list[str]) -> None:
        self.client = client
        self.root = root
        self.nodes = nodes

    def ensure_storage_class(self) -> None:
        """Create the StorageClass unless it exists."""
        r = self.client.post(
            "/apis/storage.k8s.io/v1/storageclasses",
            content=json.dumps(storage_class()),
            headers=HEADERS,
        )
        if r.status_code not in (201, 409):
            r.raise_for_status()

    def _immediate(self) -> bool:
        r = self.client.get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}")
        return r.status_code == 200 and r.json().get("volumeBindingMode") == "Immediate"

    def _reclaim_policy(self) -> str:
        r = self.client.get(f"/apis/storage.k8s.io/v1/storageclasses/{STORAGE_CLASS}")
        return str(r.json().get("reclaimPolicy", "Delete")) if r.status_code == 200 else "Delete"

    def provision(self, claim: JSON, node: str) -> None:
        """Make the claim's directory (owned for uid 1000 / gid 100) and its volume."""
        name = f"pvc-{claim['metadata']['uid']}"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, OWNER_UID, OWNER_GID)
        os.chmod(path, MODE)
        volume = volume_for(claim, node, path, self._reclaim_policy())
        r = self.client.post(
            "/api/v1/persistentvolumes", content=json.dumps(volume), headers=HEADERS
        )
        if r.status_code not in (201, 409):
            log.warning("volume %s: HTTP %s %s", name, r.status_code, r.text[:200])
            return
        log.info("provisioned %s on %s for %s/%s", name, node, *_ns_name(claim))

    def reclaim(self, volume: JSON) -> None:
        """Delete a released volume's data, then the volume."""
        name = volume["metadata"]["name"]
        path = Path(volume["spec"].get("local", {}).get("path", ""))
        if path.parent == self.root and path.name == name:
            shutil.rmtree(path, ignore_errors=True)
        r = self.client.delete(f"/api/v1/persistentvolumes/{name}")
        if r.status_code not in (200, 202, 404):
            log.warning("delete %s: HTTP %s %s", name, r.status_code, r.text[:200])
            return
        log.info("reclaimed %s", name)

    def sync(self) -> None:
        """One pass: provision what pending claims need, reclaim what released volumes free."""
        claims: list[JSON] = self.client.get("/api/v1/persistentvolumeclaims").json()["items"]
        volumes: list[JSON] = self.client.get("/api/v1/persistentvolumes").json()["items"]
        ours = [
            v
            for v in volumes
            if v["metadata"].get("annotations", {}).get(PROVISIONED_BY) == PROVISIONER
        ]
        existing = {v["metadata"]["name"] for v in ours}
        immediate: bool | None = None
        for claim in claims:
            if f"pvc-{claim['metadata']['uid']}" in existing:
                continue
            if claim.get("spec", {}).get("storageClassName") != STORAGE_CLASS:
                continue
            if immediate is None:
                immediate = self._immediate()
            node = wants_volume(claim, self.nodes, immediate)
            if node:
                self.provision(claim, node)
        live = {c["metadata"]["uid"] for c in claims}
        for volume in ours:
            spec, phase = volume["spec"], volume.get("status", {}).get("phase")
            gone = spec.get("claimRef", {}).get("uid") not in live and phase != "Bound"
            if (phase == "Released" or gone) and spec.get(
                "persistentVolumeReclaimPolicy"
            ) == "Delete":
                self.reclaim(volume)


def _ns_name(claim: JSON) -> tuple[str, str]:
    meta = claim["metadata"]
    return str(meta["namespace"]), str(meta["name"])
