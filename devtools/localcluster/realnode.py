"""One real node: the files and commands of its containerd, kubelet and kube-proxy, all kept
under the node's own directory (containerd root/state/socket, CNI config and IPAM, kubelet root,
pod logs), plus the cgroups, mounts and stray processes it leaves, and how to remove them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .netplan import POD_BRIDGE, NetPlan

CGROUP_FS = Path("/sys/fs/cgroup")
CNI_BIN = Path("/usr/lib/cni")
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


@dataclass(frozen=True)
class NodeLayout:
    """Where real node ``index`` keeps everything, under ``base``."""

    base: Path
    index: int
    name: str

    @property
    def socket(self) -> Path:
        """containerd's gRPC socket (the kubelet's CRI endpoint, and ctr's address)."""
        return self.base / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        """containerd's persistent root (content store, snapshots: imported images)."""
        return self.base / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        """containerd's runtime state (tasks, pod netns mounts)."""
        return self.base / "containerd" / "state"

    @property
    def kubelet_root(self) -> Path:
        """The kubelet's root directory (pods, volumes, its serving certificate)."""
        return self.base / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """The kubelet's podLogsDir (instead of /var/log/pods)."""
        return self.base / "pod-logs"

    @property
    def netns(self) -> Path:
        """The bind mount holding the node's network namespace."""
        return self.base / "netns"

    def file(self, name: str) -> Path:
        """A configuration file of the node."""
        return self.base / name

    def check(self) -> None:
        """Refuse a base path too long for the unix sockets under it."""
        longest = str(self.socket) + ".ttrpc"
        if len(longest) > MAX_SOCKET_PATH:
            raise ValueError(f"state dir too long for a unix socket path: {longest}")


def containerd_config(layout: NodeLayout, plan: NetPlan, sandbox_image: str) -> str:
    """containerd 1.6 configuration (version 2): own paths, runc, CNI, offline sandbox image."""
    state, cri = layout.containerd_state, '[plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{layout.socket}"
[ttrpc]
  address = "{layout.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.base / "containerd" / "opt"}"

{cri}]
  sandbox_image = "{sandbox_image}"
  # This VM lacks CAP_SYS_RESOURCE: a negative oom_score_adj would fail every sandbox.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
{cri}.containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = "{state / "runc"}"
  SystemdCgroup = false
{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{layout.base / "cni"}"
  max_conf_num = 1
"""


def cni_config(layout: NodeLayout, plan: NetPlan) -> dict[str, Any]:
    """The node's CNI network: a bridge in its namespace, host-local IPAM under its dir."""
    k = layout.index
    return {
        "cniVersion": "1.0.0",
        "name": plan.network_name(k),
        "plugins": [
            {
                "type": "bridge",
                "bridge": POD_BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [
                        [{"subnet": plan.node_pod_cidr(k), "gateway": plan.node_pod_gateway(k)}]
                    ],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.base / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(layout: NodeLayout, plan: NetPlan, client_ca: Path, max_pods: int) -> str:
    """KubeletConfiguration for cgroup v1 (failCgroupV1: false), x509-only authentication."""
    k = layout.index
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": plan.cgroup_root(k),
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "address": plan.node_ip(k),
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        # Only holders of a certificate from our CA (the API server) authenticate at all.
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [plan.gateway],
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        "podLogsDir": str(layout.pod_logs),
        "volumePluginDir": str(layout.base / "volume-plugins"),
        "makeIPTablesUtilChains": False,
        "protectKernelDefaults": False,
        "enableControllerAttachDetach": False,
        "failSwapOn": False,
        "maxPods": max_pods,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "nodeStatusReportFrequency": "10s",
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
        "logging": {"verbosity": 1},
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(layout: NodeLayout, plan: NetPlan, kubeconfig: Path) -> str:
    """KubeProxyConfiguration: iptables mode inside the node namespace, NodePorts on its IP only."""
    k = layout.index
    config: dict[str, Any] = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": layout.name,
        "mode": "iptables",
        "clusterCIDR": plan.pod_cidr,
        "nodePortAddresses": [f"{plan.node_ip(k)}/32"],
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # Zero: leave the conntrack sysctls alone (global ones are not ours to change).
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"localhostNodePorts": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_files(
    layout: NodeLayout, plan: NetPlan, sandbox_image: str, client_ca: Path, max_pods: int
) -> None:
    """Write the containerd, CNI, kubelet and kube-proxy configuration of the node."""
    for d in (layout.base / "cni", layout.kubelet_root, layout.pod_logs):
        d.mkdir(parents=True, exist_ok=True)
    layout.file("containerd.toml").write_text(containerd_config(layout, plan, sandbox_image))
    conflist = layout.base / "cni" / "10-onyxia.conflist"
    conflist.write_text(json.dumps(cni_config(layout, plan), indent=2))
    layout.file("kubelet.yaml").write_text(kubelet_config(layout, plan, client_ca, max_pods))
    proxy = kube_proxy_config(layout, plan, layout.file("kube-proxy.kubeconfig"))
    layout.file("kube-proxy.yaml").write_text(proxy)


def cgroup_hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers, named ones and the unified one)."""
    return [p for p in sorted(CGROUP_FS.iterdir()) if (p / "cgroup.procs").exists()]


def prepare_cgroups(root: str) -> None:
    """Create the node's cgroup root in every v1 hierarchy (cpuset gets its parent's cpus/mems)."""
    for h in cgroup_hierarchies():
        d = h / root.lstrip("/")
        d.mkdir(exist_ok=True)
        if h.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((h / f).read_text())


def cgroup_pids(root: str) -> set[int]:
    """Every pid in the node's cgroups, in any hierarchy."""
    pids: set[int] = set()
    for h in cgroup_hierarchies():
        top = h / root.lstrip("/")
        if not top.is_dir():
            continue
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in procs.read_text().split())
    return pids


def remove_cgroups(root: str) -> list[str]:
    """Remove the node's cgroups bottom-up; return those that would not go."""
    left: list[str] = []
    for h in cgroup_hierarchies():
        top = h / root.lstrip("/")
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                left.append(f"{d}: {e.strerror}")
    return left


def shim_pids(socket: Path) -> set[int]:
    """The containerd shims started for this node's containerd (their argv names its socket)."""
    pids: set[int] = set()
    needle = str(socket).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and needle in argv:
            pids.add(int(proc.name))
    return pids


def kill_pids(pids: set[int], timeout: float = 5.0) -> None:
    """SIGKILL these pids (our containers' and shims') and wait until they are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path.resolve())
    found: list[str] = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: -p.count("/"))


def unmount_under(path: Path) -> list[str]:
    """Unmount everything below path (lazily if busy); return mount points still there."""
    for _ in range(3):
        points = mounts_under(path)
        if not points:
            return []
        for point in points:
            done = subprocess.run(["umount", point], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return mounts_under(path)
