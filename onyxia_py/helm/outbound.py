"""A catalogue's outbound HTTP. The repository's own origin is the operator's choice and is
reached wherever it is; any other host, named by the repository's content (icons, package URLs,
the repositories charts' dependencies name) or by a redirect, only at a public address or in a
network the catalogue allows. Every download
has a connect timeout, a deadline for the whole of it (redirects included) and a size cap."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpcore
import httpx

from onyxia_py.errors import Forbidden, Invalid, NotFound, OnyxiaError, OperationFailed, Unavailable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_REDIRECTS = 5
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    # An IPv6 address that stands for an IPv4 one (mapped, 6to4, NAT64) leads where that one does.
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether `address` is globally reachable unicast: not loopback, private, shared, link-local
    (169.254.169.254, the cloud metadata service, is), multicast, reserved or unspecified, nor an
    IPv6 form of such an IPv4 address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or site_local
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Where URLs from a repository's content may lead: public addresses, and the networks the
    operator allows for this catalogue."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def of(cls, networks: Iterable[str]) -> AddressPolicy:
        """The policy allowing `networks` (CIDRs, or single addresses) besides public addresses."""
        return cls(tuple(ipaddress.ip_network(n) for n in networks))

    def permits(self, address: Address) -> bool:
        """Whether a connection to `address` is allowed."""
        embedded = _embedded_ipv4(address)
        forms = (address,) if embedded is None else (address, embedded)
        return is_public(address) or any(f in n for f in forms for n in self.allowed)

    async def addresses(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, in order; Forbidden if any one is not permitted (a
        name must not pair a public address with an internal one)."""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            raise Unavailable(f"{host} cannot be resolved") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
        for text in addresses:
            address = ipaddress.ip_address(text)
            if not self.permits(address):
                embedded = _embedded_ipv4(address)
                shown = f"{address}" if embedded is None else f"{address} ({embedded})"
                found_as = f"{shown} is" if text == host else f"{host} resolves to {shown},"
                allow = "the catalogue's allowedNetworks can allow it"
                raise Forbidden(f"{found_as} not a public address ({allow})")
        return addresses


class _Refused(Exception):
    """The policy's answer, carried out of httpx unchanged (it wraps only its own errors)."""

    def __init__(self, error: OnyxiaError) -> None:
        super().__init__(error.detail)
        self.error = error


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Opens connections only to addresses a policy permits. The name is resolved here and the
    connection made to the very address checked: no second lookup that a rebinding DNS server
    could answer differently."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface: the connect timeout)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to the first permitted address of `host` that answers."""
        try:
            addresses = await self._policy.addresses(host, port)
        except OnyxiaError as exc:
            raise _Refused(exc) from None
        failure = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def sleep(self, seconds: float) -> None:
        """As the backend it wraps."""
        await self._inner.sleep(seconds)


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool on `_CheckedBackend`. httpx has no public hook
    for the network backend; httpcore's pool, which it wraps, has. A client built on its own
    transport ignores HTTP(S)_PROXY, as it must: a proxy would connect where we cannot check."""

    def __init__(self, verify: ssl.SSLContext, policy: AddressPolicy) -> None:
        super().__init__(verify=verify)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify,
            network_backend=_CheckedBackend(policy),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
        )


class CatalogHttp:
    """HTTP for one catalogue. The repository's own origin (its location's host and port, over
    the same scheme or HTTPS) gets the catalogue's TLS settings and credentials. Any other host
    gets the system's CAs plus the catalogue's CA file, never the credentials, and is reached
    only at an address `policy` permits. Redirects are followed here, each hop judged anew."""

    def __init__(
        self,
        location: str,
        *,
        verify: ssl.SSLContext | bool,
        ca_file: str | None,
        credentials: tuple[str, str] | None,
        policy: AddressPolicy,
        connect_seconds: float,
    ) -> None:
        self._origin = urlsplit(location)
        self._verify = verify
        self._ca_file = ca_file
        self._auth = httpx.BasicAuth(*credentials) if credentials else None
        self._policy = policy
        self._connect = connect_seconds
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def _own(self, parts: SplitResult) -> bool:
        # An oci:// registry is reached over HTTPS (or plain HTTP when configured so).
        scheme = parts.scheme in (self._origin.scheme, "https") or self._origin.scheme == "oci"
        return parts.netloc == self._origin.netloc and scheme

    def _client(self, own: bool) -> httpx.AsyncClient:
        if own not in self._clients:
            # The deadline of each download bounds reads; only connecting has its own limit.
            timeout = httpx.Timeout(None, connect=self._connect)
            if own:
                client = httpx.AsyncClient(verify=self._verify, timeout=timeout)
            else:
                verify = httpx.create_ssl_context()
                if self._ca_file:
                    verify.load_verify_locations(cafile=self._ca_file)
                transport = _CheckedTransport(verify, self._policy)
                client = httpx.AsyncClient(transport=transport, timeout=timeout)
            self._clients[own] = client
        return self._clients[own]

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        seconds: float,
        headers: Mapping[str, str] | None = None,
        cap: str = "",
    ) -> bytes:
        """The body at an http(s) `url`, following up to 5 redirects, all within `seconds`;
        Invalid past `max_bytes` (`cap` names the setting that sets it), Forbidden at an
        address the policy refuses, Unavailable when unreachable or too slow."""
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(url, max_bytes, headers or {}, cap)
        except ValueError:  # urlsplit on a malformed URL (the chart's, or a redirect's)
            raise Invalid(f"{safe_url(url)}: not a valid URL") from None
        except TimeoutError:
            raise Unavailable(
                f"{safe_url(url)}: not received within {seconds:g}s (catalogs.http_timeout_seconds)"
            ) from None

    async def _follow(
        self, url: str, max_bytes: int, headers: Mapping[str, str], cap: str
    ) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https"):
                raise Invalid(f"{safe_url(url)}: only http(s) URLs are fetched")
            own = self._own(parts)
            auth = self._auth if own else None
            try:
                async with self._client(own).stream(
                    "GET", url, headers=headers, auth=auth or httpx.USE_CLIENT_DEFAULT
                ) as response:
                    if response.is_redirect:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    withheld = self._auth is not None and not own
                    _check_status(
                        response.status_code, url, credentials=auth is not None, withheld=withheld
                    )
                    return await _read_capped(response, url, max_bytes, cap)
            except _Refused as refused:
                raise type(refused.error)(f"{safe_url(url)}: {refused.error.detail}") from None
            except httpx.TimeoutException:
                raise Unavailable(
                    f"{safe_url(url)}: no connection within {self._connect:g}s "
                    "(catalogs.http_connect_timeout_seconds)"
                ) from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise Unavailable(f"{safe_url(url)}: {type(exc).__name__}") from None
        raise OperationFailed(f"{safe_url(url)}: more than {MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        """Close the connections."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _check_status(status: int, url: str, *, credentials: bool, withheld: bool = False) -> None:
    if status in (401, 403):
        refused = "the repository refused our credentials" if credentials else f"HTTP {status}"
        if withheld:
            refused += " (the catalogue's credentials go to its own origin only)"
        raise OperationFailed(f"{safe_url(url)}: {refused}")
    if status == 404:
        raise NotFound(f"{safe_url(url)}: not found")
    if status >= 400:
        raise Unavailable(f"{safe_url(url)}: HTTP {status}")


async def _read_capped(response: httpx.Response, url: str, max_bytes: int, cap: str) -> bytes:
    setting = f" ({cap})" if cap else ""
    too_big = Invalid(f"{safe_url(url)}: larger than {size_text(max_bytes)}{setting}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)


def size_text(count: int) -> str:
    """A byte count as people read it: `256 KiB`, `64 MiB`."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.4g} {unit}"
    return f"{count} bytes"


def safe_url(url: str) -> str:
    """`url` without credentials or query (neither may reach a log or an error body)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # e.g. a port that is not a number: say nothing of it
        return "<an invalid URL>"
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


class _SafeRequestLines(logging.Filter):
    """httpx logs every request's full URL at INFO; chart icon URLs may be signed, so only the
    part `safe_url` keeps may reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                safe_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_SafeRequestLines())
