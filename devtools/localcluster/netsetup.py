"""The network of a cluster's real nodes: a host bridge, one network namespace per node joined
to it by a veth pair, routes, and nftables rules in tables of our own (see netplan.py).

Pods may reach only the pod network and the gateway; nodes and pods reach the API server through
a DNAT from the gateway to 127.0.0.1 (route_localnet on our bridge only). Global sysctls are not
touched here: IP forwarding happens inside the node namespaces, whose sysctls are their own.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import ClusterError
from .netplan import MAX_CLUSTERS, NODE_LINK, NetPlan

NODE_TABLE = "onyxia"


class NetError(ClusterError):
    """A network setup command failed."""


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a command; return stdout, or raise NetError with its stderr when check is set."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def in_netns(netns: Path, *argv: str) -> list[str]:
    """The argv that runs a command inside the network namespace bound at netns."""
    return ["nsenter", f"--net={netns}", "--", *argv]


def link_exists(name: str) -> bool:
    """Tell whether a network interface of that name exists in the host namespace."""
    return Path("/sys/class/net", name).exists()


def claim_index(nodes: int, preferred: int | None = None) -> NetPlan:
    """Take a free network index (preferred first) by creating its bridge (fails if taken)."""
    order = list(range(MAX_CLUSTERS))
    if preferred in order:
        order.remove(preferred)
        order.insert(0, preferred)
    for index in order:
        plan = NetPlan(index, nodes)
        proc = subprocess.run(
            ["ip", "link", "add", plan.bridge, "type", "bridge"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return plan
        if "exists" not in proc.stderr:
            raise NetError(f"ip link add {plan.bridge} type bridge: {proc.stderr.strip()}")
    raise NetError(f"all {MAX_CLUSTERS} real-node networks are taken (bridges onyxia0..)")


def _sysctl_write(path: Path, value: str) -> None:
    path.write_text(value)


def host_rules(plan: NetPlan, api_port: int) -> str:
    """The nftables script of the host table: API DNAT, and pod/node traffic to the gateway only."""
    br, gw, t = plan.bridge, plan.gateway, plan.host_table
    ports = f'"{br}*"'
    return f"""table ip {t} {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "{br}" ip daddr {gw} tcp dport {api_port} dnat to 127.0.0.1:{api_port}
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname "{br}" ct state established,related accept
    iifname "{br}" ct original ip daddr {gw} accept
    iifname "{br}" drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname {ports} oifname {ports} accept
    iifname {ports} drop
    oifname {ports} drop
  }}
}}
"""


def node_rules(plan: NetPlan) -> str:
    """The nftables script inside a node namespace: pods reach the pod network and gateway only."""
    pods, gw = plan.pod_cidr, plan.gateway
    return f"""table inet {NODE_TABLE} {{
  chain forward {{
    type filter hook forward priority filter; policy accept;
    ip saddr {pods} ip daddr {pods} accept
    ip saddr {pods} ip daddr {gw} accept
    ip saddr {pods} ct state established,related accept
    ip saddr {pods} drop
    meta nfproto ipv6 drop
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    ip saddr {pods} ct state established,related accept
    ip saddr {pods} drop
  }}
}}
"""


def setup_host(plan: NetPlan, api_port: int) -> None:
    """Address the (claimed) bridge, bring it up, and load the host table."""
    br = plan.bridge
    conf = Path("/proc/sys/net/ipv4/conf", br)
    _sysctl_write(conf / "route_localnet", "1")
    _sysctl_write(Path("/proc/sys/net/ipv6/conf", br, "disable_ipv6"), "1")
    run(["ip", "addr", "add", f"{plan.gateway}/24", "dev", br])
    run(["ip", "link", "set", br, "up"])
    run(["nft", "-f", "-"], stdin=host_rules(plan, api_port))


def setup_node(plan: NetPlan, k: int, netns: Path) -> None:
    """Create node k's namespace (bound at netns), its veth, addresses, routes and rules."""
    netns.parent.mkdir(parents=True, exist_ok=True)
    netns.touch()
    run(["unshare", f"--net={netns}", "true"])
    veth = plan.host_veth(k)
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", NODE_LINK, "netns", str(netns)])
    _sysctl_write(Path("/proc/sys/net/ipv6/conf", veth, "disable_ipv6"), "1")
    run(["ip", "link", "set", veth, "master", plan.bridge, "up"])
    script = "\n".join(
        [
            "set -e",
            "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6",
            "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
            "ip link set lo up",
            f"ip addr add {plan.node_ip(k)}/24 dev {NODE_LINK}",
            f"ip link set {NODE_LINK} up",
            f"ip route add default via {plan.gateway}",
            *(
                f"ip route add {plan.node_pod_cidr(j)} via {plan.node_ip(j)}"
                for j in range(plan.nodes)
                if j != k
            ),
        ]
    )
    run(in_netns(netns, "sh", "-c", script))
    run(in_netns(netns, "nft", "-f", "-"), stdin=node_rules(plan))
    run(["ip", "route", "add", plan.node_pod_cidr(k), "via", plan.node_ip(k), "dev", plan.bridge])
    if k == 0:
        # The host reaches ClusterIPs through node 0's kube-proxy rules.
        run(["ip", "route", "add", plan.service_cidr, "via", plan.node_ip(0), "dev", plan.bridge])


def teardown(plan: NetPlan, netns_files: Sequence[Path]) -> list[str]:
    """Remove the host table, veths, namespaces and bridge; return what could not be removed."""
    problems: list[str] = []
    if plan.host_table in run(["nft", "list", "tables", "ip"], check=False).split():
        with contextlib.suppress(NetError):
            run(["nft", "delete", "table", "ip", plan.host_table])
    for k in range(plan.nodes):
        if link_exists(plan.host_veth(k)):
            run(["ip", "link", "del", plan.host_veth(k)], check=False)
    for netns in netns_files:
        if not netns.exists():
            continue
        # Unbinding the last reference destroys the namespace, its links and its rules.
        run(["umount", str(netns)], check=False)
        try:
            netns.unlink()
        except OSError as e:
            problems.append(f"{netns}: {e}")
    if link_exists(plan.bridge):
        run(["ip", "link", "del", plan.bridge], check=False)
    for name in [plan.bridge, *(plan.host_veth(k) for k in range(plan.nodes))]:
        if link_exists(name):
            problems.append(f"interface {name} still exists")
    return problems
