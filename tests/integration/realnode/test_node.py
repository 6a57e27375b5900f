"""A real node joins the cluster Ready and untainted, runs a pod that serves HTTP through a
Service, and its kubelet answers logs and exec through the API server."""

from __future__ import annotations

import httpx

from devtools.localcluster import LocalCluster
from devtools.localcluster.binaries import VERSIONS

from .helpers import WEB_PORT, create, namespace, pod_exec, wait_pod_ready, webtest_pod
from .tools_stack import wait_for


def answer(url: str) -> str | None:
    """The body at `url`, or None while nothing answers."""
    try:
        return httpx.get(url, timeout=3).text
    except httpx.TransportError:
        return None


def test_real_node_is_ready_untainted_and_current(
    real_cluster: LocalCluster, real_api: httpx.Client
) -> None:
    for name in real_cluster.real_nodes:
        node = real_api.get(f"/api/v1/nodes/{name}").json()
        conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
        assert conds["Ready"] == "True"
        assert not node["spec"].get("taints")
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{VERSIONS.k8s}"
        assert info["containerRuntimeVersion"].startswith("containerd://")
        internal = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
        assert internal
        assert not internal[0].startswith("127.")


def test_pod_serves_http_by_pod_ip_service_and_dns(
    real_cluster: LocalCluster, real_api: httpx.Client
) -> None:
    with namespace(real_api) as ns:
        create(
            real_api, f"/api/v1/namespaces/{ns}/pods", webtest_pod("web", real_cluster.test_image)
        )
        service = {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": WEB_PORT}]},
        }
        svc = create(real_api, f"/api/v1/namespaces/{ns}/services", service)
        pod = wait_pod_ready(real_api, ns, "web")
        assert pod["status"]["podIP"].startswith(real_cluster.pod_cidr.split(".0.0/")[0] + ".")
        # From the host: the pod IP, then the ClusterIP (kube-proxy's rules in the node).
        assert httpx.get(f"http://{pod['status']['podIP']}:{WEB_PORT}/").text == "hello from web\n"
        cluster_ip = svc["spec"]["clusterIP"]
        # kube-proxy programs the Service once its EndpointSlice lists the ready pod: a moment
        # after the pod is Ready.
        assert wait_for(lambda: answer(f"http://{cluster_ip}/"), 30, "the ClusterIP") == (
            "hello from web\n"
        )
        # From a pod, by the Service's DNS name (cluster DNS on the gateway), through exec.
        url = f"http://web.{ns}.svc.cluster.local/"
        out = pod_exec(real_cluster.kubeconfig, ns, "web", ["/webtest", "get", url])
        assert out == "hello from web\n"
        assert pod_exec(real_cluster.kubeconfig, ns, "web", ["/webtest", "id"]).startswith(
            "uid=1000 gid=100"
        )
        logs = real_api.get(f"/api/v1/namespaces/{ns}/pods/web/log").text
        assert "webtest listening on :8080 as uid=1000" in logs
