"""Where charts come from: a folder of chart directories, an HTTP(S) Helm repository, an OCI
registry. Each gives an index (shaped like `index.yaml`) and chart packages cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
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
                f"{_safe(url)}: no answer within {self.config.timeout_seconds:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{_safe(url)}: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise OperationFailed(f"{_safe(url)}: the repository refused our credentials")
        if response.status_code == 404:
            raise NotFound(f"{_safe(url)}: not found")
        if response.status_code >= 400:
            raise Unavailable(f"{_safe(url)}: HTTP {response.status_code}")
        return response.content

    async def index(self) -> dict[str, Any]:
        """The decoded `index.yaml`."""
        raw = await self._get(urljoin(self.base, "index.yaml"))
        try:
            # Large indexes take a while to parse: off the event loop, with libyaml if present.
            document = await asyncio.to_thread(yaml.load, raw, Loader=_YAML_LOADER)
        except yaml.YAMLError as exc:
            raise Invalid(f"index.yaml of {_safe(self.base)} is not valid YAML: {exc}") from None
        if not isinstance(document, dict):
            raise Invalid(f"index.yaml of {_safe(self.base)} is not a mapping")
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


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _safe(url: str) -> str:
    """`url` without credentials or query (neither may reach a log or an error body)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
