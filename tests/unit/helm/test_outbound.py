"""The address policy of outbound requests: which addresses are public, what a catalogue's
allowedNetworks add, how names resolve; and the texts errors show."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import Forbidden, Unavailable
from onyxia_py.helm.outbound import AddressPolicy, is_public, safe_url, size_text

INTERNAL = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared (carrier-grade NAT)
    "169.254.169.254",  # link-local: the cloud metadata service
    "0.0.0.0",  # unspecified
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",  # link-local
    "fec0::1",  # site-local (deprecated, still routed inside some networks)
    "fc00::1",  # unique local
    "fd00:ec2::254",  # AWS's IPv6 metadata service
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2001:db8::1",  # documentation
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "151.101.1.1", "2606:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", INTERNAL)
def test_internal_addresses_are_not_public(text: str) -> None:
    address = ipaddress.ip_address(text)
    assert not is_public(address)
    assert not AddressPolicy().permits(address)


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


def test_allowed_networks_add_to_public_addresses() -> None:
    policy = AddressPolicy.of(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])
    for allowed in ("10.20.30.40", "127.0.0.1", "::ffff:10.0.0.1", "fd12::1", "8.8.8.8"):
        assert policy.permits(ipaddress.ip_address(allowed)), allowed
    for refused in ("127.0.0.2", "169.254.169.254", "192.168.0.1", "::1"):
        assert not policy.permits(ipaddress.ip_address(refused)), refused


async def test_every_address_a_name_resolves_to_is_checked() -> None:
    assert await AddressPolicy.of(["127.0.0.0/8"]).addresses("localhost", 80) == ["127.0.0.1"]
    with pytest.raises(Forbidden, match=r"^localhost resolves to 127\.0\.0\.1, not a public"):
        await AddressPolicy().addresses("localhost", 80)
    with pytest.raises(Forbidden, match=r"^169\.254\.169\.254 is not a public address"):
        await AddressPolicy().addresses("169.254.169.254", 80)
    with pytest.raises(Forbidden, match=r"::ffff:a9fe:a9fe \(169\.254\.169\.254\) is not"):
        await AddressPolicy().addresses("::ffff:169.254.169.254", 80)
    with pytest.raises(Unavailable, match=r"nothing\.invalid cannot be resolved"):
        await AddressPolicy().addresses("nothing.invalid", 80)


def test_a_catalogue_names_networks_it_allows() -> None:
    base = {"id": "c", "name": "C", "location": "https://charts.example"}
    spec = CatalogSpec.model_validate({**base, "allowedNetworks": ["10.0.0.0/8", "::1"]})
    assert [str(n) for n in spec.allowed_networks] == ["10.0.0.0/8", "::1/128"]
    assert spec.model_dump(mode="json", by_alias=True)["allowedNetworks"] == [
        "10.0.0.0/8",
        "::1/128",
    ]
    for wrong in ("10.0.0.1/8", "not-a-network", "10.0.0.0/33"):
        with pytest.raises(ValidationError):
            CatalogSpec.model_validate({**base, "allowedNetworks": [wrong]})


def test_texts() -> None:
    assert size_text(256 * 1024) == "256 KiB"
    assert size_text(64 << 20) == "64 MiB"
    assert size_text(1536) == "1.5 KiB"
    assert size_text(10) == "10 bytes"
    assert safe_url("http://u:p@[::1]:8080/a.png?sig=s") == "http://[::1]:8080/a.png"
    assert safe_url("http://127.0.0.1:port/") == "<an invalid URL>"
