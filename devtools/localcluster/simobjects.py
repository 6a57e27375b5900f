"""Bodies of the Node objects and pod status patches the simulated kubelet sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .binaries import VERSIONS
from .nodespec import NodeSpec

JSON = dict[str, Any]
NODE_IP = "127.0.0.1"
KUBELET_VERSION = f"v{VERSIONS.k8s}-sim"


def now() -> str:
    """Return the current UTC time in the RFC 3339 form Kubernetes uses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_conditions(ts: str) -> list[JSON]:
    """Return healthy node conditions with heartbeat time ts."""

    def cond(kind: str, status: str, reason: str, message: str) -> JSON:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": ts,
            "lastTransitionTime": ts,
        }

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "sim: enough memory"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "sim: no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "sim: enough PIDs"),
        cond("Ready", "True", "KubeletReady", "sim: kubelet is posting ready status"),
    ]


def node_labels(name: str, spec: NodeSpec, gpu: bool) -> dict[str, str]:
    """Return the labels of a simulated node."""
    labels = {
        "type": "simulated",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    }
    if gpu:
        labels["nvidia.com/gpu.product"] = spec.gpu_product
        labels["nvidia.com/gpu.count"] = str(spec.gpus)
        labels["nvidia.com/gpu.present"] = "true"
    return labels


def node_status(name: str, spec: NodeSpec, gpu: bool, ts: str, kubelet_port: int = 10250) -> JSON:
    """Return the full status of a simulated node."""
    resources = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.pods),
        "ephemeral-storage": spec.ephemeral_storage,
    }
    if gpu:
        resources["nvidia.com/gpu"] = str(spec.gpus)
    return {
        "capacity": dict(resources),
        "allocatable": dict(resources),
        "conditions": node_conditions(ts),
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": name,
            "systemUUID": name,
            "bootID": name,
            "kernelVersion": "sim",
            "osImage": "simulated node",
            "containerRuntimeVersion": "sim://1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def node_body(name: str, spec: NodeSpec, gpu: bool, ts: str, kubelet_port: int = 10250) -> JSON:
    """Return a Node to create: Ready at creation and without taints."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels(name, spec, gpu)},
        "spec": {},
        "status": node_status(name, spec, gpu, ts, kubelet_port),
    }


def completes(pod: JSON) -> bool:
    """Tell whether a pod should run to completion (Jobs, hooks) instead of running forever."""
    return pod.get("spec", {}).get("restartPolicy", "Always") in ("Never", "OnFailure")


def _terminated(ts: str) -> JSON:
    return {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": ts, "finishedAt": ts}}


def _container_status(pod: JSON, c: JSON, state: JSON, ready: bool) -> JSON:
    uid = pod["metadata"].get("uid", "")
    image = c.get("image", "")
    return {
        "name": c["name"],
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "image": image,
        "imageID": f"sim://{image}",
        "containerID": f"sim://{uid}/{c['name']}",
        "state": state,
        "lastState": {},
    }


def pod_status_patch(pod: JSON, pod_ip: str, ts: str) -> JSON:
    """Return a merge patch that moves a bound pod to Running (or Succeeded if it completes)."""
    spec = pod.get("spec", {})
    done = completes(pod)
    start = pod.get("status", {}).get("startTime") or ts

    def cond(kind: str, status: str, reason: str | None = None) -> JSON:
        c: JSON = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": ts}
        if reason:
            c["reason"] = reason
        return c

    running = {"running": {"startedAt": ts}}
    containers = [
        _container_status(pod, c, _terminated(ts) if done else running, not done)
        for c in spec.get("containers", [])
    ]
    inits = [
        _container_status(pod, c, _terminated(ts), False) for c in spec.get("initContainers", [])
    ]
    ready = "False" if done else "True"
    reason = "PodCompleted" if done else None
    status: JSON = {
        "phase": "Succeeded" if done else "Running",
        "conditions": [
            cond("Initialized", "True", reason),
            cond("Ready", ready, reason),
            cond("ContainersReady", ready, reason),
            cond("PodScheduled", "True"),
        ],
        "hostIP": NODE_IP,
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
        "containerStatuses": containers,
    }
    if inits:
        status["initContainerStatuses"] = inits
    return {"status": status}
