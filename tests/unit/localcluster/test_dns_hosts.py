"""The cluster DNS hosts file, built from plain Service and EndpointSlice dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.localcluster.dns import DnsOptions, dnsmasq_conf
from devtools.localcluster.dnshosts import hosts_entries, hosts_file

JSON = dict[str, Any]
DOMAIN = "cluster.local"


def service(name: str, ns: str = "u", cluster_ip: str = "10.96.0.9", **spec: Any) -> JSON:
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, **spec},
    }


def eps(svc: str, endpoints: list[JSON], ns: str = "u", address_type: str = "IPv4") -> JSON:
    return {
        "metadata": {
            "namespace": ns,
            "name": f"{svc}-abcde",
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": address_type,
        "endpoints": endpoints,
    }


def ep(ip: str, ready: bool | None = True, hostname: str | None = None) -> JSON:
    e: JSON = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


def test_cluster_ip_services_resolve_to_their_cluster_ips() -> None:
    dual = service("web", clusterIPs=["10.96.0.7", "fd00::7"], cluster_ip="10.96.0.7")
    entries = hosts_entries([service("jup"), dual], [eps("jup", [ep("10.244.0.3")])], DOMAIN)
    assert entries == {
        "jup.u.svc.cluster.local": ["10.96.0.9"],
        "web.u.svc.cluster.local": ["10.96.0.7", "fd00::7"],
    }


def test_headless_services_resolve_to_ready_pods_and_their_hostnames() -> None:
    headless = service("db", cluster_ip="None")
    slices = [
        eps(
            "db",
            [
                ep("10.244.0.4", hostname="db-0"),
                ep("10.244.0.5", None, "db-1"),
                ep("10.244.0.6", False),
            ],
        ),
        eps("db", [ep("10.244.0.7")], ns="other"),
        eps("web", [ep("10.244.0.8")]),
    ]
    assert hosts_entries([headless], slices, DOMAIN) == {
        "db-0.db.u.svc.cluster.local": ["10.244.0.4"],
        "db-1.db.u.svc.cluster.local": ["10.244.0.5"],
        "db.u.svc.cluster.local": ["10.244.0.4", "10.244.0.5"],
    }


def test_publish_not_ready_addresses_counts_every_endpoint() -> None:
    headless = service("db", cluster_ip="None", publishNotReadyAddresses=True)
    entries = hosts_entries([headless], [eps("db", [ep("10.244.0.6", False, "db-0")])], DOMAIN)
    assert entries["db-0.db.u.svc.cluster.local"] == ["10.244.0.6"]


def test_headless_without_endpoints_and_external_names_have_no_entry() -> None:
    services = [
        service("db", cluster_ip="None"),
        {"metadata": {"namespace": "u", "name": "ext"}, "spec": {"type": "ExternalName"}},
    ]
    assert hosts_entries(services, [eps("db", [], address_type="FQDN")], DOMAIN) == {}


def test_hosts_file_is_sorted_lines_in_the_given_domain() -> None:
    services = [service("b", ns="v", cluster_ip="10.96.0.2"), service("a", cluster_ip="10.96.0.1")]
    text = hosts_file(services[::-1], [], "lab.internal")
    assert text.splitlines()[1:] == [
        "10.96.0.1 a.u.svc.lab.internal",
        "10.96.0.2 b.v.svc.lab.internal",
    ]
    assert hosts_file(services, [], "lab.internal") == text


def test_dnsmasq_answers_only_for_the_cluster_domain_from_its_own_files() -> None:
    opts = DnsOptions(listen="10.88.0.1", port=53, domain=DOMAIN, state_dir=Path("/state"))
    conf = dnsmasq_conf(opts, "root", "root").splitlines()
    for line in (
        "listen-address=10.88.0.1",
        "port=53",
        "no-resolv",
        "no-hosts",
        "addn-hosts=/state/hosts",
        "local=/cluster.local/",
        "pid-file=/state/dnsmasq.pid",
        "user=root",
    ):
        assert line in conf
    assert not any(line.startswith(("dhcp", "server=", "resolv-file")) for line in conf)
