"""Where charts come from: a folder of chart directories, an HTTP(S) Helm repository, an OCI
registry. Each gives an index (shaped like `index.yaml`) and chart packages cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import yaml

from onyxia_py.errors import Invalid, NotFound, OperationFailed, Unavailable
from onyxia_py.helm.archive import read_contents
from onyxia_py.naming import short_hash


@dataclass(frozen=True)
class SourceConfig:
    """How to reach one repository (credentials are secrets: never log this object)."""

    location: str
    cache_dir: Path
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    skip_tls_verify: bool = False
    timeout_seconds: float = 30.0
    oci_charts: tuple[str, ...] = ()
    plain_http: bool = False

    def __repr__(self) -> str:
        return f"SourceConfig(location={self.location!r})"


class ChartSource(Protocol):
    """A repository of charts."""

    async def index(self) -> dict[str, Any]:
        """The repository's index, shaped like Helm's `index.yaml`."""
        ...

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        """A local path (`.tgz` or folder) of one chart version, fetched once and cached."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def source_for(config: SourceConfig, base_dir: Path) -> ChartSource:
    """The source for a catalogue `location`: oci://, http(s):// or a folder."""
    location = config.location
    if location.startswith("oci://"):
        from onyxia_py.helm.oci import OciSource

        return OciSource(config)
    if location.startswith(("http://", "https://")):
        return HttpSource(config)
    folder = Path(location.removeprefix("file://"))
    return FolderSource(folder if folder.is_absolute() else base_dir / folder)


class FolderSource:
    """Chart directories in a local folder (like this repository's `charts/`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def index(self) -> dict[str, Any]:
        """An index built from each sub-folder's Chart.yaml."""
        return await asyncio.to_thread(self._index)

    def _index(self) -> dict[str, Any]:
        if not self.folder.is_dir():
            raise NotFound(f"catalogue folder {self.folder} does not exist")
        entries: dict[str, list[dict[str, Any]]] = {}
        for chart in sorted(self.folder.iterdir()):
            if not (chart / "Chart.yaml").is_file():
                continue
            metadata = dict(read_contents(chart).metadata)
            metadata["urls"] = [chart.name]
            entries.setdefault(str(metadata.get("name", chart.name)), []).append(metadata)
        return {"apiVersion": "v1", "entries": entries}

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        """The chart's own folder."""
        folder = self.folder / (urls[0] if urls else name)
        if not (folder / "Chart.yaml").is_file():
            raise NotFound(f"chart {name} {version} is not in {self.folder}")
        return folder

    async def close(self) -> None:
        """Nothing to release."""


def _verify(config: SourceConfig) -> ssl.SSLContext | bool:
    if config.skip_tls_verify:
        return False
    if config.ca_file:
        return ssl.create_default_context(cafile=config.ca_file)
    return True


class HttpSource:
    """A Helm chart repository over HTTP(S): `<location>/index.yaml` and `.tgz` packages."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.base = config.location.rstrip("/") + "/"
        self._http = httpx.AsyncClient(
            timeout=config.timeout_seconds, verify=_verify(config), follow_redirects=True
        )
        self._host = urlsplit(self.base).netloc

    def _auth(self, url: str) -> httpx.BasicAuth | None:
        # Like Helm, credentials go only to the repository's own host, never to a CDN elsewhere.
        if self.config.username is None or urlsplit(url).netloc != self._host:
            return None
        return httpx.BasicAuth(self.config.username, self.config.password or "")

    async def _get(self, url: str) -> bytes:
        try:
            response = await self._http.get(
                url,
                auth=self._auth(url) or httpx.USE_CLIENT_DEFAULT,
                headers={"Cache-Control": "no-cache"},
            )
        except httpx.TimeoutException:
            raise Unavailable(
                f"{safe_url(url)}: no answer within {self.config.timeout_seconds:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{safe_url(url)}: {type(exc).__name__}") from None
        _check_status(response.status_code, url)
        return response.content

    async def index(self) -> dict[str, Any]:
        """The decoded `index.yaml`."""
        raw = await self._get(urljoin(self.base, "index.yaml"))
        try:
            # Large indexes take a while to parse: off the event loop, with libyaml if present.
            document = await asyncio.to_thread(yaml.load, raw, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise Invalid(f"index.yaml of {safe_url(self.base)} is not valid YAML: {exc}") from None
        if not isinstance(document, dict):
            raise Invalid(f"index.yaml of {safe_url(self.base)} is not a mapping")
        return document

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        """The `.tgz`, from the disk cache when its digest matches, else downloaded."""
        if not urls:
            raise NotFound(f"chart {name} {version} has no download URL")
        target = self.config.cache_dir / f"{name}-{version}-{short_hash(digest or urls[0], 12)}.tgz"
        if target.is_file() and (not digest or _sha256(target.read_bytes()) == digest):
            return target
        data = await self._get(urljoin(self.base, urls[0]))
        if digest and _sha256(data) != digest:
            raise OperationFailed(f"{name} {version}: the package does not match its digest")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
        return target

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()


def _check_status(status: int, url: str) -> None:
    if status in (401, 403):
        raise OperationFailed(f"{safe_url(url)}: the repository refused our credentials")
    if status == 404:
        raise NotFound(f"{safe_url(url)}: not found")
    if status >= 400:
        raise Unavailable(f"{safe_url(url)}: HTTP {status}")


class IconFetcher(Protocol):
    """Downloads chart icons for one catalogue."""

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The body at an http(s) `url`; Invalid when longer than `max_bytes`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


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

_MAX_REDIRECTS = 5
_USER_AGENT = "onyxia-py (chart icons)"  # some image hosts refuse anonymous library agents


class HttpIconFetcher:
    """Icons over HTTP(S). The repository's own origin gets the catalogue's TLS settings and
    credentials; any other host is checked against the system's CAs (plus the catalogue's CA
    file) and never sees the credentials, redirects included."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        parts = urlsplit(config.location)
        self._origin = (parts.scheme, parts.netloc)
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def _own(self, url: str) -> bool:
        parts = urlsplit(url)
        own_host = parts.netloc == self._origin[1]
        # An oci:// registry is reached over HTTPS (or plain HTTP when configured so).
        return own_host and (parts.scheme == self._origin[0] or self._origin[0] == "oci")

    def _client(self, own: bool) -> httpx.AsyncClient:
        if own not in self._clients:
            verify: ssl.SSLContext | bool = _verify(self.config)
            if not own:
                verify = httpx.create_ssl_context()
                if self.config.ca_file:
                    verify.load_verify_locations(cafile=self.config.ca_file)
            self._clients[own] = httpx.AsyncClient(
                timeout=self.config.timeout_seconds,
                verify=verify,
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT, "Accept": "image/*"},
            )
        return self._clients[own]

    def _auth(self, url: str) -> httpx.BasicAuth | None:
        # Same rule as HttpSource: only the repository's own origin gets its credentials.
        http_repository = self._origin[0] in ("http", "https")
        if self.config.username is None or not http_repository or not self._own(url):
            return None
        return httpx.BasicAuth(self.config.username, self.config.password or "")

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The body at `url` (up to 5 redirects), within the catalogue's timeout in all."""
        try:
            async with asyncio.timeout(self.config.timeout_seconds):
                return await self._follow(url, max_bytes)
        except ValueError:  # urlsplit on a malformed URL (the chart's, or a redirect's)
            raise Invalid(f"{safe_url(url)}: not a valid URL") from None
        except TimeoutError:
            raise Unavailable(
                f"{safe_url(url)}: no answer within {self.config.timeout_seconds:g}s"
            ) from None

    async def _follow(self, url: str, max_bytes: int) -> bytes:
        for _ in range(_MAX_REDIRECTS + 1):
            if urlsplit(url).scheme not in ("http", "https"):
                raise Invalid(f"{safe_url(url)}: icons are fetched over http(s) only")
            own = self._own(url)
            try:
                async with self._client(own).stream(
                    "GET", url, auth=self._auth(url) or httpx.USE_CLIENT_DEFAULT
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = str(response.url.join(response.headers["location"]))
                        continue
                    if response.status_code in (401, 403):
                        raise OperationFailed(f"{safe_url(url)}: HTTP {response.status_code}")
                    _check_status(response.status_code, url)
                    return await _read_capped(response, url, max_bytes)
            except httpx.TimeoutException:
                raise Unavailable(
                    f"{safe_url(url)}: no answer within {self.config.timeout_seconds:g}s"
                ) from None
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise Unavailable(f"{safe_url(url)}: {type(exc).__name__}") from None
        raise OperationFailed(f"{safe_url(url)}: more than {_MAX_REDIRECTS} redirects")

    async def close(self) -> None:
        """Close the HTTP connections."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def _read_capped(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    too_big = Invalid(f"{safe_url(url)}: larger than {max_bytes // 1024} KiB")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_url(url: str) -> str:
    """`url` without credentials or query (neither may reach a log or an error body)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # e.g. a port that is not a number: say nothing of it
        return "<an invalid URL>"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
