"""A simulated kubelet: registers Ready nodes and fakes the lifecycle of pods bound to them."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from .kubeconfig import ClientConfig, load_client_config
from .nodespec import NodeSpec
from .simlogs import start_log_server
from .simobjects import JSON, node_body, node_labels, node_status, now, pod_status_patch
from .simvolumes import VolumeProvisioner

log = logging.getLogger("simnode")
MERGE = {"Content-Type": "application/merge-patch+json"}
DONE_PHASES = ("Running", "Succeeded", "Failed")


class _StopRequestedError(Exception):
    """Raised from the SIGTERM handler to leave a blocking watch."""


class PodIPs:
    """Hands out unique fake pod IPs in 10.244.0.0/16, one per pod uid."""

    def __init__(self) -> None:
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()
        self._next = 0

    def reserve(self, uid: str, ip: str) -> None:
        """Remember an IP some pod already has so it is not handed out again."""
        self._by_uid[uid] = ip
        self._used.add(ip)

    def get(self, uid: str) -> str:
        """Return the pod's IP, allocating a fresh one on first use."""
        if uid not in self._by_uid:
            while True:
                n = self._next
                self._next = (self._next + 1) % (256 * 254)
                ip = f"10.244.{n // 254}.{n % 254 + 1}"
                if ip not in self._used:
                    break
            self.reserve(uid, ip)
        return self._by_uid[uid]

    def release(self, uid: str) -> None:
        """Free the IP of a deleted pod."""
        ip = self._by_uid.pop(uid, None)
        if ip:
            self._used.discard(ip)


class SimNode:
    """Simulated kubelet for the nodes described by a NodeSpec."""

    def __init__(self, cfg: ClientConfig, spec: NodeSpec, heartbeat: float = 10.0) -> None:
        self.cfg = cfg
        self.spec = spec
        self.heartbeat = heartbeat
        self.names = spec.node_names()
        self.ips = PodIPs()
        self.stopping = threading.Event()
        # uids whose deletion we already finished; later events for them need no second DELETE
        self.deleted: set[str] = set()
        self.client = cfg.client(timeout=10.0)
        self.kubelet_port = 10250

    def is_gpu(self, name: str) -> bool:
        """Tell whether the node carries GPUs (the first gpu_nodes nodes do)."""
        return self.spec.gpus > 0 and self.names.index(name) < self.spec.gpu_nodes

    # -- nodes --------------------------------------------------------------------------------

    def register(self, client: httpx.Client, name: str) -> None:
        """Create the node Ready and untainted, or bring an existing one back to that state."""
        gpu = self.is_gpu(name)
        r = client.post(
            "/api/v1/nodes", json=node_body(name, self.spec, gpu, now(), self.kubelet_port)
        )
        if r.status_code == 409:
            patch = {
                "metadata": {"labels": node_labels(name, self.spec, gpu)},
                "spec": {"taints": None, "unschedulable": None},
            }
            client.patch(
                f"/api/v1/nodes/{name}", content=json.dumps(patch), headers=MERGE
            ).raise_for_status()
            self.post_status(client, name)
        else:
            r.raise_for_status()
            # TaintNodesByCondition may still have added not-ready; nothing else would remove it.
            if r.json().get("spec", {}).get("taints"):
                untaint = json.dumps({"spec": {"taints": None}})
                client.patch(
                    f"/api/v1/nodes/{name}", content=untaint, headers=MERGE
                ).raise_for_status()
        log.info("node %s registered (gpu=%s)", name, gpu)

    def post_status(self, client: httpx.Client, name: str) -> httpx.Response:
        """Refresh the node's status (heartbeat)."""
        body = {"status": node_status(name, self.spec, self.is_gpu(name), now(), self.kubelet_port)}
        return client.patch(f"/api/v1/nodes/{name}/status", content=json.dumps(body), headers=MERGE)

    def heartbeat_loop(self) -> None:
        """Post node status every few seconds; re-create nodes somebody deleted."""
        with self.cfg.client(timeout=10.0) as client:
            while not self.stopping.wait(self.heartbeat):
                for name in self.names:
                    try:
                        r = self.post_status(client, name)
                        if r.status_code == 404:
                            self.register(client, name)
                        elif r.status_code >= 400:
                            log.warning(
                                "heartbeat %s: HTTP %s %s", name, r.status_code, r.text[:200]
                            )
                    except httpx.HTTPError as e:
                        log.warning("heartbeat %s: %s", name, e)

    # -- pods ---------------------------------------------------------------------------------

    def handle(self, event: str, pod: JSON) -> None:
        """React to one pod event; errors are logged, never raised."""
        meta = pod.get("metadata", {})
        ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid", "")
        if pod.get("spec", {}).get("nodeName") not in self.names:
            return
        try:
            if event == "DELETED":
                self.ips.release(uid)
                self.deleted.discard(uid)
            elif meta.get("deletionTimestamp"):
                if uid in self.deleted:
                    return
                self.delete(ns, name, uid)
            elif pod.get("status", {}).get("phase") not in DONE_PHASES:
                self.run(pod)
            elif ip := pod.get("status", {}).get("podIP"):
                self.ips.reserve(uid, ip)
        except (httpx.HTTPError, KeyError, ValueError) as e:
            log.warning("pod %s/%s: %s", ns, name, e)

    def run(self, pod: JSON) -> None:
        """Patch a bound pod's status to Running (or Succeeded for run-to-completion pods)."""
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        patch = pod_status_patch(pod, self.ips.get(meta["uid"]), now())
        r = self.client.patch(
            f"/api/v1/namespaces/{ns}/pods/{name}/status", content=json.dumps(patch), headers=MERGE
        )
        if r.status_code == 404:
            return
        if r.status_code >= 400:
            log.warning("pod %s/%s status: HTTP %s %s", ns, name, r.status_code, r.text[:300])
            return
        log.info("pod %s/%s -> %s", ns, name, patch["status"]["phase"])

    def delete(self, ns: str, name: str, uid: str) -> None:
        """Finish a graceful deletion at once, as a kubelet does once containers stopped."""
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        r = self.client.request(
            "DELETE",
            f"/api/v1/namespaces/{ns}/pods/{name}",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        if r.status_code in (404, 409):
            log.info("pod %s/%s already gone (HTTP %s)", ns, name, r.status_code)
            return
        r.raise_for_status()
        self.deleted.add(uid)
        log.info("pod %s/%s deleted", ns, name)

    def list_pods(self) -> str:
        """List bound pods, sync each, and return the list's resourceVersion."""
        r = self.client.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName!="})
        r.raise_for_status()
        data = r.json()
        items: list[JSON] = data.get("items", [])
        # Reserve IPs first so fresh allocations never collide with pods from before a restart.
        for pod in items:
            ip = pod.get("status", {}).get("podIP")
            if ip and pod.get("spec", {}).get("nodeName") in self.names:
                self.ips.reserve(pod["metadata"]["uid"], ip)
        for pod in items:
            self.handle("ADDED", pod)
        return str(data["metadata"]["resourceVersion"])

    def watch(self, rv: str) -> str | None:
        """Watch bound pods from rv; return the last rv, or None if a fresh list is needed."""
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "fieldSelector": "spec.nodeName!=",
            "timeoutSeconds": "300",
        }
        timeout = httpx.Timeout(10.0, read=360.0)
        with self.client.stream("GET", "/api/v1/pods", params=params, timeout=timeout) as r:
            if r.status_code == 410:
                return None
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.strip():
                    continue
                ev: dict[str, Any] = json.loads(line)
                kind, obj = ev.get("type", ""), ev.get("object", {})
                if kind == "ERROR":
                    log.info("watch error %s; re-listing", obj.get("code"))
                    return None
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if kind != "BOOKMARK":
                    self.handle(kind, obj)
        return rv

    def run_forever(self) -> None:
        """Register the nodes, start the heartbeat, and process pods until stopped."""
        for name in self.names:
            self.register(self.client, name)
        threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True).start()
        volumes = VolumeProvisioner(self.cfg.client(timeout=10.0), self.stopping)
        threading.Thread(target=volumes.loop, name="volumes", daemon=True).start()
        rv: str | None = None
        while not self.stopping.is_set():
            try:
                if rv is None:
                    rv = self.list_pods()
                rv = self.watch(rv)
            except (httpx.HTTPError, ValueError, KeyError) as e:
                log.warning("watch failed (%s); re-listing in 1s", e)
                rv = None
                time.sleep(1.0)


def parse_args(argv: list[str] | None = None) -> tuple[Path, NodeSpec, float]:
    """Parse the command line into a kubeconfig path, a NodeSpec and a heartbeat period."""
    d = NodeSpec()
    p = argparse.ArgumentParser(
        prog="python -m devtools.localcluster.simnode",
        description="Simulated kubelet for a local control plane.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--nodes", type=int, default=d.count)
    p.add_argument("--cpu", default=d.cpu)
    p.add_argument("--memory", default=d.memory)
    p.add_argument("--pods", type=int, default=d.pods)
    p.add_argument("--gpus", type=int, default=d.gpus)
    p.add_argument("--gpu-nodes", type=int, default=d.gpu_nodes)
    p.add_argument("--gpu-product", default=d.gpu_product)
    p.add_argument("--ephemeral-storage", default=d.ephemeral_storage)
    p.add_argument("--heartbeat", type=float, default=10.0)
    a = p.parse_args(argv)
    spec = NodeSpec(
        count=a.nodes,
        cpu=a.cpu,
        memory=a.memory,
        pods=a.pods,
        gpus=a.gpus,
        gpu_nodes=a.gpu_nodes,
        gpu_product=a.gpu_product,
        ephemeral_storage=a.ephemeral_storage,
    )
    return a.kubeconfig, spec, a.heartbeat


def main(argv: list[str] | None = None) -> int:
    """Run the simulated kubelet until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    # httpx logs every request at INFO; the pod log lines are the useful part.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kubeconfig, spec, heartbeat = parse_args(argv)
    node = SimNode(load_client_config(kubeconfig), spec, heartbeat)
    node.kubelet_port = start_log_server(kubeconfig.parent / "kubelet-tls", node.stopping)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        node.stopping.set()
        raise _StopRequestedError

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        node.run_forever()
    except _StopRequestedError:
        pass
    finally:
        node.stopping.set()
        node.client.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
