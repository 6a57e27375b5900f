"""The node's configuration files: its own paths everywhere, and what 1.37 on cgroup v1 needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from devtools.localcluster.netplan import NetPlan
from devtools.localcluster.realnode import (
    NodeLayout,
    cni_config,
    containerd_config,
    kube_proxy_config,
    kubelet_config,
)

PLAN = NetPlan(4, 1)
LAYOUT = NodeLayout(Path("/state/nodes/0"), 0, "real-node-0")


def test_containerd_keeps_to_its_node_directory() -> None:
    conf = tomllib.loads(containerd_config(LAYOUT, PLAN, "onyxia.local/pause:1"))
    assert conf["root"].startswith("/state/nodes/0/")
    assert conf["state"].startswith("/state/nodes/0/")
    assert conf["grpc"]["address"] == "/state/nodes/0/containerd.sock"
    assert conf["plugins"]["io.containerd.internal.v1.opt"]["path"].startswith("/state/")
    cri = conf["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "onyxia.local/pause:1"
    assert cri["restrict_oom_score_adj"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["cni"]["conf_dir"].startswith("/state/")
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["Root"].startswith("/state/")
    assert runc["options"]["SystemdCgroup"] is False


def test_kubelet_runs_on_cgroup_v1_and_trusts_only_the_client_ca() -> None:
    conf = yaml.safe_load(kubelet_config(LAYOUT, PLAN, Path("/state/pki/ca.crt"), 50))
    assert conf["failCgroupV1"] is False
    assert conf["cgroupDriver"] == "cgroupfs"
    assert conf["cgroupRoot"] == "/onyxia4n0"
    assert conf["address"] == "10.88.4.10"
    assert conf["clusterDNS"] == ["10.88.4.1"]
    assert conf["clusterDomain"] == "cluster.local"
    assert conf["authentication"]["anonymous"]["enabled"] is False
    assert conf["authentication"]["webhook"]["enabled"] is False
    assert conf["authentication"]["x509"]["clientCAFile"] == "/state/pki/ca.crt"
    assert conf["podLogsDir"].startswith("/state/")
    assert conf["maxPods"] == 50


def test_kube_proxy_opens_node_ports_on_the_node_ip_only() -> None:
    conf = yaml.safe_load(kube_proxy_config(LAYOUT, PLAN, Path("/state/kp.kubeconfig")))
    assert conf["nodePortAddresses"] == ["10.88.4.10/32"]
    assert conf["clusterCIDR"] == PLAN.pod_cidr
    assert conf["conntrack"]["maxPerCore"] == 0
    assert conf["iptables"]["localhostNodePorts"] is False


def test_cni_network_is_the_nodes_subnet() -> None:
    conf = cni_config(LAYOUT, PLAN)
    bridge = conf["plugins"][0]
    assert conf["name"] == "onyxia4-0"
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == "10.104.0.0/24"
    assert bridge["ipam"]["dataDir"].startswith("/state/")


def test_a_too_long_state_dir_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        NodeLayout(Path("/" + "x" * 120), 0, "n").check()
