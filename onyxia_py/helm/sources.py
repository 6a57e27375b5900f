"""Where charts come from: a folder of chart directories, an HTTP(S) Helm repository, an OCI
registry. Each gives an index (shaped like `index.yaml`) and chart packages cached on disk."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin

import yaml

from onyxia_py.errors import Invalid, NotFound, OperationFailed
from onyxia_py.helm.archive import read_contents
from onyxia_py.helm.outbound import AddressPolicy, CatalogHttp, safe_url
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
    timeout_seconds: float = 30.0  # the deadline of one whole download, or of one registry call
    connect_timeout_seconds: float = 10.0
    max_index_bytes: int = 64 << 20
    max_package_bytes: int = 32 << 20
    allowed_networks: tuple[str, ...] = ()  # beyond public addresses, for URLs the content names
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


def catalog_http(config: SourceConfig) -> CatalogHttp:
    """The HTTP client of one catalogue: its TLS settings, and its credentials for an HTTP(S)
    repository (an OCI registry's are for the registry client only)."""
    http_repository = config.location.startswith(("http://", "https://"))
    credentials = (config.username, config.password or "") if config.username is not None else None
    return CatalogHttp(
        config.location,
        verify=_verify(config),
        ca_file=config.ca_file,
        credentials=credentials if http_repository else None,
        policy=AddressPolicy.of(config.allowed_networks),
        connect_seconds=config.connect_timeout_seconds,
    )


class HttpSource:
    """A Helm chart repository over HTTP(S): `<location>/index.yaml` and `.tgz` packages."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.base = config.location.rstrip("/") + "/"
        self._http = catalog_http(config)

    async def index(self) -> dict[str, Any]:
        """The decoded `index.yaml`."""
        return await _index(self._http, self.base, self.config)

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        """The `.tgz`, from the disk cache when its digest matches, else downloaded."""
        if not urls:
            raise NotFound(f"chart {name} {version} has no download URL")
        target = self.config.cache_dir / f"{name}-{version}-{short_hash(digest or urls[0], 12)}.tgz"
        return await _package(self._http, urljoin(self.base, urls[0]), target, digest, self.config)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()


class IconFetcher(Protocol):
    """Downloads chart icons for one catalogue."""

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The body at an http(s) `url`; Invalid when longer than `max_bytes`."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# Some image hosts refuse anonymous library agents.
_ICON_HEADERS = {"User-Agent": "onyxia-py (chart icons)", "Accept": "image/*"}


class HttpIconFetcher:
    """Icons over HTTP(S), as `CatalogHttp` reaches hosts: the repository's own origin with the
    catalogue's TLS settings and credentials, any other only at an address the catalogue's
    policy permits, redirects included; within the catalogue's deadline in all."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self._http = catalog_http(config)

    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The body at `url` (up to 5 redirects)."""
        return await self._http.get(
            url, max_bytes=max_bytes, seconds=self.config.timeout_seconds, headers=_ICON_HEADERS
        )

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()


async def _index(http: CatalogHttp, base: str, config: SourceConfig) -> dict[str, Any]:
    raw = await http.get(
        urljoin(base, "index.yaml"),
        max_bytes=config.max_index_bytes,
        seconds=config.timeout_seconds,
        headers={"Cache-Control": "no-cache"},
        cap="catalogs.max_index_bytes",
    )
    try:
        # Large indexes take a while to parse: off the event loop, with libyaml if present.
        document = await asyncio.to_thread(yaml.load, raw, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise Invalid(f"index.yaml of {safe_url(base)} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise Invalid(f"index.yaml of {safe_url(base)} is not a mapping")
    return document


async def _package(
    http: CatalogHttp, url: str, target: Path, digest: str, config: SourceConfig
) -> Path:
    if _cached(target, digest):
        return target
    data = await http.get(
        url,
        max_bytes=config.max_package_bytes,
        seconds=config.timeout_seconds,
        cap="catalogs.max_package_bytes",
    )
    if digest and _sha256(data) != digest:
        raise OperationFailed(f"{safe_url(url)}: the package does not match its digest")
    _store(target, data)
    return target


def _cached(target: Path, digest: str) -> bool:
    return target.is_file() and (not digest or _sha256(target.read_bytes()) == digest)


def _store(target: Path, data: bytes) -> None:
    # Written aside and renamed, so no reader sees half a package.
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)


class OtherRepositories(Protocol):
    """The Helm repositories a chart's dependencies name, other than the catalogue's."""

    async def index(self, repository: str) -> dict[str, Any]:
        """The decoded `index.yaml` of the repository at an http(s) URL."""
        ...

    async def package(
        self, repository: str, name: str, version: str, urls: tuple[str, ...], digest: str
    ) -> Path:
        """A `.tgz` of that repository, fetched once and cached on disk."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HttpRepositories:
    """Repositories that dependencies name, reached as `CatalogHttp` reaches hosts: the
    catalogue's own origin with its TLS settings and credentials, any other without them and
    only at an address the catalogue's policy permits; capped and time-limited as the
    catalogue's own downloads. Indexes are kept in memory for `index_seconds`, packages on disk
    (checked against their digest)."""

    def __init__(self, config: SourceConfig, *, index_seconds: float = 300.0) -> None:
        self.config = config
        self._http = catalog_http(config)
        self._seconds = index_seconds
        self._indexes: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def index(self, repository: str) -> dict[str, Any]:
        """The repository's index, fetched at most once per `index_seconds`."""
        base = repository.rstrip("/") + "/"
        # Charts assembled at once need one download of a repository's index, not one each.
        async with self._locks.setdefault(base, asyncio.Lock()):
            kept = self._indexes.get(base)
            now = time.monotonic()
            if kept is not None and now - kept[0] < self._seconds:
                return kept[1]
            document = await _index(self._http, base, self.config)
            self._indexes[base] = (now, document)
            return document

    async def package(
        self, repository: str, name: str, version: str, urls: tuple[str, ...], digest: str
    ) -> Path:
        """The `.tgz` of `name` `version`, cached under `dependencies/` by repository."""
        if not urls:
            raise NotFound(f"{safe_url(repository)}: {name} {version} has no download URL")
        base = repository.rstrip("/") + "/"
        folder = self.config.cache_dir / "dependencies" / short_hash(base, 12)
        target = folder / f"{name}-{version}-{short_hash(digest or urls[0], 12)}.tgz"
        return await _package(self._http, urljoin(base, urls[0]), target, digest, self.config)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.close()


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
