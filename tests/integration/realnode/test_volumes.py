"""The local-path provisioner: a claim of the default class binds once its pod is scheduled, a
uid-1000 pod with fsGroup 100 writes to it, the data outlives the pod, and deleting the claim
deletes the volume and its directory."""

from __future__ import annotations

from pathlib import Path

import httpx

from devtools.localcluster import LocalCluster

from .helpers import create, namespace, pod_exec, wait_gone, wait_pod_ready, webtest_pod

DATA = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
MOUNT = [{"name": "data", "mountPath": "/data"}]


def test_claim_is_provisioned_written_kept_and_reclaimed(
    real_cluster: LocalCluster, real_api: httpx.Client
) -> None:
    kc = real_cluster.kubeconfig
    with namespace(real_api) as ns:
        claim = {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
        create(real_api, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", claim)
        pods = f"/api/v1/namespaces/{ns}/pods"
        create(real_api, pods, webtest_pod("writer", real_cluster.test_image, None, DATA, MOUNT))
        wait_pod_ready(real_api, ns, "writer")
        assert pod_exec(kc, ns, "writer", ["/webtest", "write", "/data/note", "kept"]) == ""

        bound = real_api.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data").json()
        assert bound["status"]["phase"] == "Bound"
        assert bound["spec"]["storageClassName"] == "local-path"
        pv = real_api.get(f"/api/v1/persistentvolumes/{bound['spec']['volumeName']}").json()
        path = Path(pv["spec"]["local"]["path"])
        assert (path / "note").read_text() == "kept"
        assert path.stat().st_gid == 100

        real_api.delete(f"{pods}/writer")
        wait_gone(real_api, f"{pods}/writer")
        create(real_api, pods, webtest_pod("reader", real_cluster.test_image, None, DATA, MOUNT))
        wait_pod_ready(real_api, ns, "reader")
        assert pod_exec(kc, ns, "reader", ["/webtest", "cat", "/data/note"]) == "kept"

        real_api.delete(f"{pods}/reader")
        wait_gone(real_api, f"{pods}/reader")
        real_api.delete(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/data")
        wait_gone(real_api, f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
        assert not path.exists()
