"""The local cluster DNS answers Service names, as pods would ask them, from a network namespace.

dnsmasq listens on port 53 of the host end of a veth pair of the test's own (like a CNI
bridge address); a resolv.conf written as the kubelet writes one is bound into the namespace by
`ip netns exec` (from /etc/netns/<name>/), so short names go through the pod search list.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from onyxia_py.kube import KubeClient

from .test_local_ingress import MANAGED_BY, TARGET, NetNs, api, controller, netns, stop_cleanly
from .test_local_ingress import wait_for as _wait_for

NOERROR, NXDOMAIN, REFUSED = 0, 3, 5
DOMAIN = "cluster.local"


def query(server: str, name: str, port: int = 53) -> tuple[int, list[str]]:
    """Ask server for the A records of name over UDP; return the rcode and the addresses."""
    qid = secrets.randbelow(1 << 16)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2.0)
        s.sendto(packet, (server, port))
        data = s.recv(4096)
    rid, flags, _, ancount, _, _ = struct.unpack("!HHHHHH", data[:12])
    assert rid == qid
    pos = 12 + len(qname) + 4
    ips: list[str] = []
    for _ in range(ancount):
        while data[pos] and data[pos] < 0xC0:  # labels of the owner name
            pos += data[pos] + 1
        pos += 2 if data[pos] >= 0xC0 else 1
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        if rtype == 1:
            ips.append(socket.inet_ntoa(data[pos : pos + rdlen]))
        pos += rdlen
    return flags & 0x0F, sorted(ips)


@contextlib.contextmanager
def pod_resolv_conf(ns: NetNs, namespace: str) -> Iterator[None]:
    """The resolv.conf a kubelet writes for a pod in namespace, seen inside ns."""
    netns_etc = Path("/etc/netns")
    created_etc = not netns_etc.exists()
    own = netns_etc / ns.name
    own.mkdir(parents=True, exist_ok=True)
    try:
        (own / "resolv.conf").write_text(
            f"search {namespace}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}\n"
            f"nameserver {ns.host_ip}\noptions ndots:5\n"
        )
        yield
    finally:
        (own / "resolv.conf").unlink(missing_ok=True)
        own.rmdir()
        if created_etc:
            with contextlib.suppress(OSError):
                netns_etc.rmdir()


def resolve_in_pod(ns: NetNs, name: str) -> list[str]:
    """What getaddrinfo inside the namespace answers for name (search list included)."""
    r = subprocess.run(
        ["ip", "netns", "exec", ns.name, "getent", "ahostsv4", name],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return sorted({line.split()[0] for line in r.stdout.splitlines() if line.strip()})


def test_dns_serves_service_names_to_pods(
    kube: KubeClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    state = tmp_path / "dns"
    with netns() as ns, pod_resolv_conf(ns, namespace):
        args = ["--kubeconfig", str(kubeconfig), "--listen", ns.host_ip, "--state-dir", str(state)]
        with controller("dns", [*args, "--domain", DOMAIN], tmp_path / "dns.log") as ctl:
            log = tmp_path / "dns.log"

            def answer(name: str) -> tuple[int, list[str]]:
                assert ctl.poll() is None, log.read_text()
                try:
                    return query(ns.host_ip, name)
                except OSError:
                    return -1, []

            def wait_for(name: str, want: tuple[int, list[str]], what: str) -> float:
                return _wait_for(lambda: answer(name) == want, what, timeout=20.0)

            # The API server's own Service is there from the first list.
            wait_for(f"kubernetes.default.svc.{DOMAIN}", (NOERROR, ["10.96.0.1"]), "kubernetes")
            fqdn = f"web.{namespace}.svc.{DOMAIN}"
            assert answer(fqdn) == (NXDOMAIN, [])
            t0 = time.monotonic()
            assert answer("example.org") == (REFUSED, [])
            outside = time.monotonic() - t0

            svc = api(
                kube,
                "POST",
                f"/api/v1/namespaces/{namespace}/services",
                {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}},
            )
            cluster_ip = svc["spec"]["clusterIP"]
            created = wait_for(fqdn, (NOERROR, [cluster_ip]), "the new Service's name")

            api(
                kube,
                "POST",
                f"/api/v1/namespaces/{namespace}/services",
                {
                    "metadata": {"name": "db"},
                    "spec": {"clusterIP": "None", "ports": [{"port": 5432}]},
                },
            )
            api(
                kube,
                "POST",
                f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
                {
                    "metadata": {
                        "name": "db-1",
                        "labels": {
                            "kubernetes.io/service-name": "db",
                            "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                        },
                    },
                    "addressType": "IPv4",
                    "ports": [{"port": 5432, "protocol": "TCP"}],
                    "endpoints": [
                        {
                            "addresses": [ns.ns_ip],
                            "hostname": "db-0",
                            "conditions": {"ready": True},
                        },
                        {"addresses": ["10.89.0.250"], "conditions": {"ready": False}},
                    ],
                },
            )
            headless = wait_for(
                f"db-0.db.{namespace}.svc.{DOMAIN}", (NOERROR, [ns.ns_ip]), "a StatefulSet pod name"
            )
            assert answer(f"db.{namespace}.svc.{DOMAIN}") == (NOERROR, [ns.ns_ip])

            # Inside the namespace, as in a pod: short names through the search list.
            assert resolve_in_pod(ns, "web") == [cluster_ip]
            assert resolve_in_pod(ns, f"web.{namespace}") == [cluster_ip]
            assert resolve_in_pod(ns, "db-0.db") == [ns.ns_ip]
            assert resolve_in_pod(ns, "kubernetes.default") == ["10.96.0.1"]
            assert resolve_in_pod(ns, "nothing-here") == []

            api(kube, "DELETE", f"/api/v1/namespaces/{namespace}/services/web")
            deleted = wait_for(fqdn, (NXDOMAIN, []), "NXDOMAIN once the Service is gone")

            print(
                f"\ndns timings: Service -> name {created:.3f}s, headless pod name "
                f"{headless:.3f}s, Service deleted -> NXDOMAIN {deleted:.3f}s, "
                f"outside name REFUSED in {outside * 1000:.1f} ms"
            )
            assert max(created, headless, deleted) < TARGET
            assert outside < 0.5
            stop_cleanly(ctl, state / "dnsmasq.pid")
            assert "dnsmasq stopped" in log.read_text()
