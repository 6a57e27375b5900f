"""The catalogues: loaded in the background, reloaded on demand, last good copy kept (the
leader's periodic refresh and the replicas' sync are in catalog/sync.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onyxia_py.catalog.icons import MAX_ICON_BYTES, Icon, IconCache, from_data_uri, validated
from onyxia_py.catalog.index import (
    InvalidIndex,
    catalog_charts,
    parse_entry,
    parse_index,
    resolve_dependency,
)
from onyxia_py.catalog.models import (
    CatalogSpec,
    CatalogStatus,
    ChartFiles,
    ChartVersion,
    Dependency,
    LoadedCatalog,
)
from onyxia_py.errors import Conflict, Forbidden, Invalid, NotFound, OnyxiaError, Unavailable
from onyxia_py.helm.archive import assemble, read_contents, vendored
from onyxia_py.helm.outbound import safe_url
from onyxia_py.helm.sources import (
    ChartSource,
    HttpIconFetcher,
    HttpRepositories,
    IconFetcher,
    OtherRepositories,
    SourceConfig,
    source_for,
)
from onyxia_py.naming import short_hash
from onyxia_py.settings import CatalogSettings

log = logging.getLogger(__name__)

SourceFactory = Callable[[SourceConfig, Path], ChartSource]
IconFetcherFactory = Callable[[SourceConfig], IconFetcher]
RepositoriesFactory = Callable[[SourceConfig], OtherRepositories]
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def restrictions_allow(spec: CatalogSpec, attributes: dict[str, Any]) -> bool:
    """Every restriction must hold: a string claim matches in full, a list claim by any element,
    a boolean by its text."""
    for restriction in spec.restrictions:
        rule = restriction.user_attribute
        value = attributes.get(rule.key)
        values = value if isinstance(value, list | tuple) else [value]
        texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values if v is not None]
        try:
            if not any(re.fullmatch(rule.matches, t) for t in texts):
                return False
        except re.error:
            log.error("catalogue %s has an invalid restriction pattern: hidden", spec.id)
            return False
    return True


class Catalogs:
    """Every catalogue, its last good load and its status."""

    def __init__(
        self,
        settings: CatalogSettings,
        specs: Iterable[CatalogSpec],
        *,
        source_factory: SourceFactory = source_for,
        icon_fetcher_factory: IconFetcherFactory = HttpIconFetcher,
        repositories_factory: RepositoriesFactory = HttpRepositories,
        base_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self._factory = source_factory
        self._icon_factory = icon_fetcher_factory
        self._repositories_factory = repositories_factory
        self._base = base_dir or Path.cwd()
        self._specs: dict[str, CatalogSpec] = {s.id: s for s in specs}
        self._loaded: dict[str, LoadedCatalog] = {}
        self._status: dict[str, CatalogStatus] = {i: CatalogStatus(i) for i in self._specs}
        self._sources: dict[str, ChartSource] = {}
        self._icon_fetchers: dict[str, IconFetcher] = {}
        self._others: dict[str, OtherRepositories] = {}
        self._icons = IconCache()
        self._files: dict[tuple[str, str, str], ChartFiles] = {}
        self._assembling: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.first_load = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- specs -------------------------------------------------------------------------------

    def specs(self) -> list[CatalogSpec]:
        """Every declared catalogue."""
        return list(self._specs.values())

    def spec(self, catalog_id: str) -> CatalogSpec:
        """One declared catalogue."""
        try:
            return self._specs[catalog_id]
        except KeyError:
            raise NotFound(f"no catalogue {catalog_id!r}") from None

    def declare(self, spec: CatalogSpec) -> None:
        """Add a catalogue before `start` (it loads with the others)."""
        if spec.id in self._specs:
            raise Conflict(f"catalogue {spec.id!r} is declared twice")
        self._specs[spec.id] = spec
        self._status[spec.id] = CatalogStatus(spec.id)

    async def put(self, spec: CatalogSpec, *, create: bool) -> None:
        """Declare (or replace) a catalogue and load it."""
        if create and spec.id in self._specs:
            raise Conflict(f"catalogue {spec.id!r} exists already")
        if not create and spec.id not in self._specs:
            raise NotFound(f"no catalogue {spec.id!r}")
        await self._drop_source(spec.id)
        self._specs[spec.id] = spec
        self._status.setdefault(spec.id, CatalogStatus(spec.id))
        self._files = {k: v for k, v in self._files.items() if k[0] != spec.id}
        await self.refresh(spec.id)

    async def remove(self, catalog_id: str) -> None:
        """Forget a catalogue."""
        self.spec(catalog_id)
        await self._drop_source(catalog_id)
        self._specs.pop(catalog_id, None)
        self._loaded.pop(catalog_id, None)
        self._status.pop(catalog_id, None)
        self._files = {k: v for k, v in self._files.items() if k[0] != catalog_id}

    async def _drop_source(self, catalog_id: str) -> None:
        self._icons.forget(catalog_id)
        source = self._sources.pop(catalog_id, None)
        if source is not None:
            await source.close()
        fetcher = self._icon_fetchers.pop(catalog_id, None)
        if fetcher is not None:
            await fetcher.close()
        others = self._others.pop(catalog_id, None)
        if others is not None:
            await others.close()

    def _config(self, spec: CatalogSpec) -> SourceConfig:
        return SourceConfig(
            location=spec.location,
            cache_dir=self._cache_dir(spec),
            username=spec.username,
            password=spec.password.get_secret_value() if spec.password else None,
            ca_file=spec.ca_file,
            skip_tls_verify=spec.skip_tls_verify,
            timeout_seconds=self.settings.http_timeout_seconds,
            connect_timeout_seconds=self.settings.http_connect_timeout_seconds,
            max_index_bytes=self.settings.max_index_bytes,
            max_package_bytes=self.settings.max_package_bytes,
            allowed_networks=tuple(str(n) for n in spec.allowed_networks),
            oci_charts=tuple(spec.oci_charts),
            plain_http=spec.plain_http,
        )

    def _source(self, spec: CatalogSpec) -> ChartSource:
        if spec.id not in self._sources:
            self._sources[spec.id] = self._factory(self._config(spec), self._base)
        return self._sources[spec.id]

    def _icon_fetcher(self, spec: CatalogSpec) -> IconFetcher:
        if spec.id not in self._icon_fetchers:
            self._icon_fetchers[spec.id] = self._icon_factory(self._config(spec))
        return self._icon_fetchers[spec.id]

    def _other(self, spec: CatalogSpec) -> OtherRepositories:
        if spec.id not in self._others:
            self._others[spec.id] = self._repositories_factory(self._config(spec))
        return self._others[spec.id]

    def _cache_dir(self, spec: CatalogSpec) -> Path:
        cache = self.settings.cache_dir
        root = cache if cache.is_absolute() else self._base / cache
        # The location is part of the key: a catalogue moved elsewhere never reuses stale files.
        return root / f"{spec.id}-{short_hash(spec.location)}"

    # -- loading -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every catalogue once, in the background (`first_load` is set when done)."""
        self._task = asyncio.create_task(self._first_load(), name="catalog-first-load")

    async def stop(self) -> None:
        """Stop refreshing and close connections."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for catalog_id in {*self._sources, *self._icon_fetchers, *self._others}:
            await self._drop_source(catalog_id)

    async def _first_load(self) -> None:
        await self.refresh_all()
        self.first_load.set()

    async def refresh_all(self) -> list[CatalogStatus]:
        """Reload every catalogue; one failing never stops the others."""
        return list(await asyncio.gather(*(self.refresh(i) for i in list(self._specs))))

    async def refresh(self, catalog_id: str) -> CatalogStatus:
        """Reload one catalogue; on failure the last good copy stays and the error is recorded."""
        spec = self.spec(catalog_id)
        status = self._status.setdefault(catalog_id, CatalogStatus(catalog_id))
        lock = self._locks.setdefault(catalog_id, asyncio.Lock())
        async with lock:
            started = time.monotonic()
            status.last_attempt = datetime.now(UTC)
            try:
                loaded = await self._load(spec)
            except (OnyxiaError, ValueError, OSError) as exc:
                status.last_error = _reason(exc)
                log.warning("catalogue %s: refresh failed: %s", catalog_id, status.last_error)
            else:
                self._loaded[catalog_id] = loaded
                status.last_success, status.last_error = loaded.loaded_at, None
                status.chart_count = len(loaded.charts)
            status.duration_seconds = round(time.monotonic() - started, 3)
        return status

    async def _load(self, spec: CatalogSpec) -> LoadedCatalog:
        source = self._source(spec)
        index = parse_index(await source.index())
        charts = catalog_charts(index, spec)
        loaded = LoadedCatalog(spec, charts, index, datetime.now(UTC))
        # Fetch every offered package now, so forms never wait on the repository.
        limit = asyncio.Semaphore(self.settings.fetch_concurrency)

        async def fetch(version: ChartVersion) -> None:
            async with limit:
                await self._package(loaded, version)

        await asyncio.gather(*(fetch(v) for c in charts for v in c.versions))
        return loaded

    async def _package(self, loaded: LoadedCatalog, version: ChartVersion) -> Path:
        source = self._source(loaded.spec)
        return await source.package(version.name, version.version, version.urls, version.digest)

    # -- reading -----------------------------------------------------------------------------

    def index(self, catalog_id: str) -> dict[str, tuple[ChartVersion, ...]] | None:
        """The repository index of a catalogue's last good load (None before one)."""
        found = self._loaded.get(catalog_id)
        return found.index if found is not None else None

    def loaded(self, catalog_id: str) -> LoadedCatalog:
        """The last good load of a catalogue."""
        self.spec(catalog_id)
        found = self._loaded.get(catalog_id)
        if found is None:
            status = self._status.get(catalog_id)
            reason = status.last_error if status and status.last_error else "not loaded yet"
            raise Unavailable(f"catalogue {catalog_id!r} is unavailable: {reason}")
        return found

    def statuses(self) -> list[CatalogStatus]:
        """How each catalogue's loading went."""
        return [self._status[i] for i in self._specs if i in self._status]

    def visible(self, attributes: dict[str, Any], *, group_project: bool) -> list[LoadedCatalog]:
        """The loaded catalogues a user with `attributes` sees in this kind of project."""
        shown = []
        for spec in self._specs.values():
            if spec.id not in self._loaded or not restrictions_allow(spec, attributes):
                continue
            if spec.visible.project if group_project else spec.visible.user:
                shown.append(self._loaded[spec.id])
        return shown

    def version(self, catalog_id: str, chart: str, version: str | None) -> ChartVersion:
        """An offered version of a chart (the newest when `version` is None)."""
        loaded = self.loaded(catalog_id)
        found = loaded.chart(chart)
        if found is None:
            raise NotFound(f"catalogue {catalog_id!r} has no chart {chart!r}")
        if version is None:
            return found.latest
        for candidate in found.versions:
            if candidate.version == version:
                return candidate
        raise NotFound(f"chart {chart!r} of {catalog_id!r} has no version {version!r}")

    async def chart_files(self, catalog_id: str, chart: str, version: str | None) -> ChartFiles:
        """Values, schema and a renderable folder (dependencies vendored) of one version."""
        wanted = self.version(catalog_id, chart, version)
        return await self._files_once((catalog_id, wanted.name, wanted.version), wanted)

    async def _files_once(self, key: tuple[str, str, str], wanted: ChartVersion) -> ChartFiles:
        # Concurrent launches of a chart not assembled yet must not assemble it side by side
        # into the same folder: one does the work, the others wait for it.
        if key not in self._files:
            async with self._assembling.setdefault(key, asyncio.Lock()):
                if key not in self._files:
                    self._files[key] = await self._chart_files(self.loaded(key[0]), wanted)
        return self._files[key]

    async def installed_chart_files(self, catalog_id: str, chart: str, version: str) -> ChartFiles:
        """The files of a version a service was installed with, even if the catalogue no longer
        offers it: from the repository's full index, else from the disk cache."""
        key = (catalog_id, chart, version)
        if key in self._files:
            return self._files[key]
        loaded = self._loaded.get(catalog_id)
        if loaded is not None:
            for candidate in loaded.index.get(chart, ()):
                if candidate.version == version:
                    return await self._files_once(key, candidate)
        spec = self._specs.get(catalog_id)
        folder = (
            self._cache_dir(spec) / "charts" / f"{chart}-{version}" if spec is not None else None
        )
        if folder is None or not folder.is_dir():
            raise NotFound(
                f"{chart} {version} is neither in catalogue {catalog_id!r} nor in the cache"
            )
        contents = await asyncio.to_thread(read_contents, folder)
        self._files[key] = ChartFiles(folder, contents.values, contents.schema, contents.readme)
        return self._files[key]

    async def icon(self, catalog_id: str, chart: str) -> Icon:
        """The icon of a chart's newest offered version, fetched on first use and cached (in
        memory and under the catalogue's cache folder); NotFound when it has none or it cannot
        be had (a failure is remembered for ten minutes)."""
        wanted = self.version(catalog_id, chart, None)
        loaded = self.loaded(catalog_id)
        spec = loaded.spec
        ref = wanted.icon.strip()
        if not ref:
            raise NotFound(f"chart {chart!r} of {catalog_id!r} has no icon")
        if ref.startswith("data:"):
            key = (catalog_id, f"data:{short_hash(ref, 16)}")
            return await self._icons.get(key, lambda: _decoded(ref))
        if ref.startswith(("http://", "https://")):
            disk = self._cache_dir(spec) / "icons" / f"{short_hash(ref, 16)}.icon"
            fetcher = self._icon_fetcher(spec)
            return await self._icons.get(
                (catalog_id, ref), lambda: _fetched(fetcher, ref), disk=disk
            )
        if _SCHEME.match(ref):
            raise NotFound(f"chart {chart!r}: icons are data:, http(s) or a path in the chart")
        key = (catalog_id, f"{wanted.name}/{wanted.version}/{ref}")
        return await self._icons.get(key, lambda: self._folder_icon(loaded, wanted, ref))

    async def _folder_icon(self, loaded: LoadedCatalog, version: ChartVersion, ref: str) -> Icon:
        folder = await self._package(loaded, version)
        if not folder.is_dir():
            raise NotFound(f"icon {ref!r}: relative icons work in folder catalogues only")
        return await asyncio.to_thread(_read_icon_file, folder, ref)

    async def _chart_files(self, loaded: LoadedCatalog, wanted: ChartVersion) -> ChartFiles:
        package = await self._package(loaded, wanted)
        folder = self._cache_dir(loaded.spec) / "charts" / f"{wanted.name}-{wanted.version}"
        contents = await asyncio.to_thread(read_contents, package)
        # Assembled once: a later launch needs neither the repositories nor the network.
        if not folder.is_dir():
            dependencies = await self._dependencies(loaded, wanted, package, contents.metadata)
            await asyncio.to_thread(assemble, package, dependencies, folder)
        return ChartFiles(folder, contents.values, contents.schema, contents.readme)

    async def _dependencies(
        self, loaded: LoadedCatalog, wanted: ChartVersion, package: Path, metadata: dict[str, Any]
    ) -> list[Path]:
        """Helm's rule: a dependency the package carries under `charts/` is used as it is; a
        missing one comes from the catalogue's repository when it has it (Onyxia's charts name
        the public copy of a repository that catalogues mirror), else from the repository the
        dependency names."""
        present = await asyncio.to_thread(vendored, package)
        fetched: list[Path] = []
        for dependency in dict.fromkeys(_declared(wanted, metadata) or wanted.dependencies):
            if dependency.name in present:
                continue
            found = resolve_dependency(dependency.name, dependency.version, loaded.index)
            if found is not None:
                fetched.append(await self._package(loaded, found))
            else:
                fetched.append(await self._named_repository(loaded.spec, wanted, dependency))
            present[dependency.name] = dependency.version
        return fetched

    async def _named_repository(
        self, spec: CatalogSpec, wanted: ChartVersion, dependency: Dependency
    ) -> Path:
        needs = f"{wanted.name} {wanted.version} needs {dependency.name} {dependency.version}"
        repository = dependency.repository.strip()
        if not repository.startswith(("http://", "https://")):
            shown = safe_url(repository) if "://" in repository else repr(repository)
            if repository.startswith("oci://"):
                where = f"dependencies in OCI registries ({shown}) are not fetched"
            elif repository:
                where = f"{shown} is not a Helm repository URL to fetch it from"
            else:
                where = "it names no repository to fetch it from"
            raise Invalid(
                f"{needs}, which neither its package (charts/) nor its catalogue's repository "
                f"has, and {where}"
            )
        remote = self._other(spec)
        try:
            index = parse_index(await remote.index(repository))
            found = resolve_dependency(dependency.name, dependency.version, index)
            if found is None:
                raise Invalid(
                    f"{needs}, which neither its package (charts/), its catalogue's repository "
                    f"nor {safe_url(repository)} has"
                )
            return await remote.package(
                repository, found.name, found.version, found.urls, found.digest
            )
        except InvalidIndex as exc:
            raise Invalid(f"{needs}: {safe_url(repository)}/index.yaml: {exc}") from None
        except (Forbidden, NotFound) as exc:
            # The chart cannot be launched from here as it is: not the user's permission.
            raise Invalid(f"{needs}: {exc.detail}") from None
        except OnyxiaError as exc:
            if exc.detail.startswith(needs):
                raise
            raise type(exc)(f"{needs}: {exc.detail}") from None


async def _decoded(uri: str) -> Icon:
    return from_data_uri(uri)


async def _fetched(fetcher: IconFetcher, url: str) -> Icon:
    return validated(await fetcher.fetch(url, max_bytes=MAX_ICON_BYTES), safe_url(url))


def _read_icon_file(folder: Path, ref: str) -> Icon:
    # Resolved first, so neither `..` nor a symlink can lead out of the chart's folder.
    try:
        root = folder.resolve()
        path = (root / ref).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFound(f"icon {ref!r} is not a file in the chart's folder")
        if path.stat().st_size > MAX_ICON_BYTES:
            raise Invalid(f"icon {ref!r}: larger than {MAX_ICON_BYTES // 1024} KiB")
        data = path.read_bytes()
    except OSError as exc:
        raise NotFound(f"icon {ref!r} cannot be read: {exc.strerror}") from None
    return validated(data, f"icon {ref!r}")


def _declared(wanted: ChartVersion, metadata: dict[str, Any]) -> tuple[Dependency, ...]:
    # The package's own Chart.yaml is what Helm checks, whatever the index says.
    entry = {
        "name": wanted.name,
        "version": wanted.version,
        "dependencies": metadata.get("dependencies"),
    }
    return parse_entry(entry).dependencies


def _reason(exc: Exception) -> str:
    if isinstance(exc, OnyxiaError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"
