"""A simulated volume provisioner: every pending PersistentVolumeClaim gets a PersistentVolume
made for it (pre-bound through claimRef, so the real persistentvolume-binder controller binds
them), and volumes whose claim is gone are deleted. No storage exists: pods have no containers."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx

log = logging.getLogger("simvolumes")

JSON = dict[str, Any]


def claim_ref(meta: JSON) -> JSON:
    """The claimRef that binds a PersistentVolume to the claim with metadata `meta`."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
    }


def volume_for(claim: JSON) -> JSON:
    """The PersistentVolume that satisfies `claim`."""
    meta, spec = claim["metadata"], claim.get("spec", {})
    size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    volume: JSON = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"sim-{meta['uid']}",
            "labels": {"onyxia.dev/simulated": "true"},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "hostPath": {"path": f"/var/lib/onyxia-sim/{meta['uid']}"},
            "claimRef": claim_ref(meta),
        },
    }
    if spec.get("volumeMode"):
        volume["spec"]["volumeMode"] = spec["volumeMode"]
    return volume


class VolumeProvisioner:
    """Polls claims and volumes once a second (cheap on a test cluster, and never misses one)."""

    def __init__(self, client: httpx.Client, stopping: threading.Event, period: float = 1.0):
        self.client = client
        self.stopping = stopping
        self.period = period

    def sync(self) -> None:
        """Provision for pending claims; delete released simulated volumes."""
        claims = self.client.get("/api/v1/persistentvolumeclaims").json().get("items", [])
        volumes = (
            self.client.get(
                "/api/v1/persistentvolumes", params={"labelSelector": "onyxia.dev/simulated=true"}
            )
            .json()
            .get("items", [])
        )
        existing = {v["metadata"]["name"] for v in volumes}
        live_claims = {c["metadata"]["uid"] for c in claims}
        for claim in claims:
            if claim.get("spec", {}).get("volumeName") or claim.get("status", {}).get(
                "phase"
            ) not in (None, "Pending"):
                continue
            # A claim for a real node's pod is the local-path provisioner's (localpath.py).
            annotations = claim["metadata"].get("annotations") or {}
            node = annotations.get("volume.kubernetes.io/selected-node", "")
            if claim.get("spec", {}).get("storageClassName") == "local-path" and not (
                node.startswith("sim-node-")
            ):
                continue
            volume = volume_for(claim)
            if volume["metadata"]["name"] in existing:
                continue
            r = self.client.post(
                "/api/v1/persistentvolumes",
                content=json.dumps(volume),
                headers={"Content-Type": "application/json"},
            )
            if r.status_code not in (201, 409):
                log.warning(
                    "volume for %s: HTTP %s %s",
                    claim["metadata"]["name"],
                    r.status_code,
                    r.text[:200],
                )
        for volume in volumes:
            claim_uid = volume["spec"].get("claimRef", {}).get("uid")
            if claim_uid not in live_claims and volume.get("status", {}).get("phase") != "Bound":
                self.client.delete(f"/api/v1/persistentvolumes/{volume['metadata']['name']}")

    def loop(self) -> None:
        """Sync until stopped; errors are logged, never fatal."""
        while not self.stopping.wait(self.period):
            try:
                self.sync()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("volume sync failed: %s", exc)
