"""Starting and stopping a cluster with a real node leaves the machine as it found it: sysctls,
firewall rules, mounts, network interfaces, cgroups, system directories and processes.

Other work may run on the machine meanwhile (other clusters, image builds), so the comparison
covers what a real node could leave: rules and tables of ours, Kubernetes' or CNI's, mounts under
our state dir or the system paths kubelet and containerd use, onyxia links and cgroups."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devtools.localcluster import NodeSpec
from devtools.localcluster.hostshare import KUBELET_SYSCTLS, SHARED_DIRS

from .conftest import start_real_cluster, stop_real_cluster
from .helpers import api, create, pod_exec, wait_pod_ready, webtest_pod

SYSCTLS = (
    *KUBELET_SYSCTLS,
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)
SYSTEM_DIRS = (*SHARED_DIRS, "/var/lib/containerd", "/opt/containerd", "/etc/cni", "/run/netns")
OURS = re.compile(r"KUBE|CNI|onyxia", re.IGNORECASE)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@dataclass(frozen=True)
class Snapshot:
    """What a real node could change on the machine."""

    sysctls: dict[str, str]
    rules: list[str]
    mounts: list[str]
    links: list[str]
    cgroups: list[str]
    dirs: list[str]

    @classmethod
    def take(cls, watched: list[str]) -> Snapshot:
        """Take a snapshot; mounts are those under the watched paths."""
        sysctls = {s: Path("/proc/sys", s).read_text().strip() for s in SYSCTLS}
        counters = re.compile(r"\[\d+:\d+\]|counter packets \d+ bytes \d+")
        rules = [
            counters.sub("", line)
            for out in (
                _run("iptables-save"),
                _run("ip6tables-save"),
                _run("nft", "list", "ruleset"),
            )
            for line in out.splitlines()
            if OURS.search(line)
        ]
        points = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        mounts = [p for p in points if any(p == w or p.startswith(w + "/") for w in watched)]
        links = [n for n in os.listdir("/sys/class/net") if OURS.search(n)]
        cgroups = [
            str(d)
            for h in Path("/sys/fs/cgroup").iterdir()
            if h.is_dir()
            for d in h.iterdir()
            if d.is_dir() and d.name.startswith("onyxia")
        ]
        dirs = [d for d in SYSTEM_DIRS if os.path.lexists(d)]
        return cls(sysctls, sorted(rules), sorted(mounts), sorted(links), sorted(cgroups), dirs)


def test_start_and_stop_leave_the_machine_as_found() -> None:
    state = Path(tempfile.mkdtemp(prefix="onyxia-test-teardown-"))
    watched = [str(state), *SYSTEM_DIRS]
    before = Snapshot.take(watched)
    cluster = start_real_cluster(state, NodeSpec(count=0, real=1))
    try:
        with api(cluster) as client:
            ns = "teardown"
            create(client, "/api/v1/namespaces", {"metadata": {"name": ns}})
            claim = {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
            create(client, f"/api/v1/namespaces/{ns}/persistentvolumeclaims", claim)
            create(
                client,
                f"/api/v1/namespaces/{ns}/configmaps",
                {"metadata": {"name": "conf"}, "data": {"k": "v"}},
            )
            volumes = [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "conf", "configMap": {"name": "conf"}},
            ]
            mounts = [
                {"name": "data", "mountPath": "/data"},
                {"name": "conf", "mountPath": "/conf"},
            ]
            pod = webtest_pod("busy", cluster.test_image, None, volumes, mounts)
            create(client, f"/api/v1/namespaces/{ns}/pods", pod)
            wait_pod_ready(client, ns, "busy")
            assert pod_exec(cluster.kubeconfig, ns, "busy", ["/webtest", "cat", "/conf/k"]) == "v"
        during = Snapshot.take(watched)
        assert set(during.mounts) > set(before.mounts), "a running pod has mounts of its own"
        assert set(during.cgroups) > set(before.cgroups)
        assert set(during.links) > set(before.links)
    finally:
        stop_real_cluster(cluster, state)
    after = Snapshot.take(watched)
    assert after.sysctls == before.sysctls
    assert after.rules == before.rules
    assert after.links == before.links
    assert after.cgroups == before.cgroups
    assert after.dirs == before.dirs
    assert [m for m in after.mounts if m.startswith(str(state))] == []
    assert after.mounts == [m for m in before.mounts if not m.startswith(str(state))]
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p, state)]
    assert leftovers == []


def _mentions(proc: Path, state: Path) -> bool:
    try:
        return str(state).encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False
