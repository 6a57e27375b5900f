"""Stopping real nodes, in the order that leaves nothing behind: the controllers (so nothing
re-creates pods), the pods through the API, kubelets and kube-proxies, containerd, stray shims
and container processes; then mounts, cgroups, the network, shared-dir entries, the host record."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from . import hostshare, netsetup, realnode
from .kubeconfig import load_client_config
from .procs import ProcessRecord, terminate
from .realnodes import CLEAN_MARK, RealNodes, ctr_binary

JSON_HEADERS = {"Content-Type": "application/json"}
NODE_PROCESSES = (
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet-",
    "kube-proxy-",
    "containerd-",
)


def stop_processes(
    nodes: RealNodes, records: list[ProcessRecord], kubeconfig: Path
) -> tuple[list[ProcessRecord], list[str]]:
    """Stop what holds pods, in order; return the records left to stop and the SIGKILLed names."""

    def pick(*prefixes: str) -> list[ProcessRecord]:
        return [r for r in records if r.name.startswith(prefixes)]

    killed = terminate(pick("kube-controller-manager", "kube-scheduler"))
    try:
        with load_client_config(kubeconfig).client(timeout=5.0) as client:
            drain(nodes, client)
    except (httpx.HTTPError, OSError, ValueError, KeyError, StopIteration):
        pass  # no API server: the kubelets' pods go with the cgroup sweep below
    killed += terminate(pick("kubelet-", "kube-proxy-"))
    forget_containers(nodes)
    killed += terminate(pick("containerd-"))
    kill_leftovers(nodes)
    return [r for r in records if not r.name.startswith(NODE_PROCESSES)], killed


def drain(nodes: RealNodes, client: httpx.Client, timeout: float = 30.0) -> None:
    """Delete the pods bound to real nodes (1 s grace) and wait until their kubelets let go."""
    names = set(nodes.names)

    def pods() -> list[tuple[str, str]]:
        r = client.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName!="})
        r.raise_for_status()
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in r.json()["items"]
            if p["spec"].get("nodeName") in names
        ]

    body = json.dumps({"gracePeriodSeconds": 1})
    for ns, name in pods():
        client.request(
            "DELETE", f"/api/v1/namespaces/{ns}/pods/{name}", content=body, headers=JSON_HEADERS
        )
    deadline = time.monotonic() + timeout
    while pods() and time.monotonic() < deadline:
        time.sleep(0.5)


def forget_containers(nodes: RealNodes) -> None:
    """With containerd still up: drop container records, so a restart keeps only the images."""
    ctr = ctr_binary()
    for k in range(len(nodes.names)):
        layout = nodes.layout(k)
        if not layout.socket.exists():
            continue
        base = [str(ctr), "--address", str(layout.socket), "--namespace", "k8s.io"]
        listed = subprocess.run(
            [*base, "containers", "ls", "-q"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,
        )
        ids, ok = listed.stdout.split(), listed.returncode == 0
        if ids:
            removed = subprocess.run(
                [*base, "containers", "rm", *ids], capture_output=True, check=False, timeout=60
            )
            ok = ok and removed.returncode == 0
        if ok:
            (layout.containerd_root.parent / CLEAN_MARK).touch()


def kill_leftovers(nodes: RealNodes) -> None:
    """SIGKILL what outlived containerd: its shims and any process in the nodes' cgroups."""
    for k in range(len(nodes.names)):
        pids = realnode.shim_pids(nodes.layout(k).socket)
        pids |= realnode.cgroup_pids(nodes.plan.cgroup_root(k))
        if pids:
            realnode.kill_pids(pids)


def teardown(nodes: RealNodes, keep_volumes: bool = False) -> list[str]:
    """Unmount, remove cgroups, the network and our shared-dir entries; release the host record.
    Return what could not be undone."""
    problems: list[str] = []
    plan, count = nodes.plan, len(nodes.names)
    for k in range(count):
        layout = nodes.layout(k)
        problems += [f"still mounted: {m}" for m in realnode.unmount_under(layout.base)]
        problems += [f"cgroup left: {c}" for c in realnode.remove_cgroups(plan.cgroup_root(k))]
        shutil.rmtree(layout.containerd_state, ignore_errors=True)
    problems += netsetup.teardown(plan, [nodes.layout(k).netns for k in range(count)])
    problems += hostshare.clean_shared_entries(
        [nodes.layout(k).pod_logs for k in range(count)],
        [plan.network_name(k) for k in range(count)],
    )
    problems += hostshare.release(plan.bridge)
    if not keep_volumes:
        shutil.rmtree(nodes.volumes_dir, ignore_errors=True)
    nodes.ingress_file.unlink(missing_ok=True)
    nodes.state_file.unlink(missing_ok=True)
    nodes.state = None
    return problems
