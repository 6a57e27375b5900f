"""The firewall scripts: pods reach the pod network and the gateway only, the API server is
DNATed from the gateway to loopback, and every rule lives in a table of our own."""

from __future__ import annotations

from devtools.localcluster.netplan import NetPlan
from devtools.localcluster.netsetup import NODE_TABLE, host_rules, node_rules


def test_host_rules_are_one_table_of_this_cluster() -> None:
    rules = host_rules(NetPlan(2, 1), 6443)
    assert rules.startswith("table ip onyxia2 {")
    assert rules.count("table ") == 1
    assert 'iifname "onyxia2" ip daddr 10.88.2.1 tcp dport 6443 dnat to 127.0.0.1:6443' in rules
    # Anything from our bridge that is not for the gateway (nor a reply) is dropped.
    lines = [line.strip() for line in rules.splitlines()]
    start = lines.index("type filter hook input priority filter; policy accept;")
    assert lines[start + 1 : start + 4] == [
        'iifname "onyxia2" ct state established,related accept',
        'iifname "onyxia2" ct original ip daddr 10.88.2.1 accept',
        'iifname "onyxia2" drop',
    ]


def test_node_rules_drop_pod_traffic_beyond_pods_and_gateway() -> None:
    rules = node_rules(NetPlan(1, 2))
    assert rules.startswith(f"table inet {NODE_TABLE} {{")
    forward = [line.strip() for line in rules.split("chain forward")[1].splitlines()]
    assert forward[2:6] == [
        "ip saddr 10.101.0.0/16 ip daddr 10.101.0.0/16 accept",
        "ip saddr 10.101.0.0/16 ip daddr 10.88.1.1 accept",
        "ip saddr 10.101.0.0/16 ct state established,related accept",
        "ip saddr 10.101.0.0/16 drop",
    ]
    assert "ip saddr 10.101.0.0/16 drop" in rules.split("chain input")[1]
