"""Each cluster index gets its own names and addresses; nodes get theirs inside them."""

from __future__ import annotations

import ipaddress

import pytest

from devtools.localcluster.netplan import MAX_CLUSTERS, NetPlan


def test_addresses_follow_the_index() -> None:
    plan = NetPlan(3, 2)
    assert plan.bridge == "onyxia3"
    assert plan.gateway == "10.88.3.1"
    assert plan.node_ip(1) == "10.88.3.11"
    assert plan.node_pod_cidr(1) == "10.103.1.0/24"
    assert plan.node_pod_gateway(0) == "10.103.0.1"
    assert plan.service_cidr == "10.113.0.0/16"
    assert plan.kubernetes_service_ip == "10.113.0.1"
    assert plan.cgroup_root(1) == "/onyxia3n1"
    assert plan.network_name(0) == "onyxia3-0"


def test_node_addresses_stay_inside_their_networks() -> None:
    plan = NetPlan(0, 3)
    pods = ipaddress.IPv4Network(plan.pod_cidr)
    lan = ipaddress.IPv4Network(plan.lan_cidr)
    for k in range(3):
        assert ipaddress.IPv4Network(plan.node_pod_cidr(k)).subnet_of(pods)
        assert ipaddress.ip_address(plan.node_ip(k)) in lan
    assert ipaddress.ip_address(plan.gateway) in lan


def test_two_clusters_share_nothing() -> None:
    a, b = NetPlan(0, 1), NetPlan(1, 1)
    for net_a, net_b in ((a.pod_cidr, b.pod_cidr), (a.lan_cidr, b.lan_cidr)):
        assert not ipaddress.ip_network(net_a).overlaps(ipaddress.ip_network(net_b))
    assert not ipaddress.ip_network(a.service_cidr).overlaps(ipaddress.ip_network(b.service_cidr))
    assert {a.bridge, a.host_veth(0), a.host_table} & {
        b.bridge,
        b.host_veth(0),
        b.host_table,
    } == set()


def test_interface_names_fit_the_kernel_limit() -> None:
    plan = NetPlan(MAX_CLUSTERS - 1, 8)
    assert all(len(n) <= 15 for n in (plan.bridge, plan.host_veth(7)))


def test_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        NetPlan(MAX_CLUSTERS, 1)
    with pytest.raises(ValueError, match="node 1"):
        NetPlan(0, 1).node_ip(1)
