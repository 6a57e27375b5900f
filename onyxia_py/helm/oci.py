"""Charts in an OCI registry (`oci://host/path`): tags are the versions, packages are pulled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import helm_python as helm

from onyxia_py.errors import NotFound, Unavailable
from onyxia_py.helm.archive import read_contents
from onyxia_py.helm.sources import SourceConfig
from onyxia_py.logs import redact


class OciSource:
    """An OCI registry; it has no index, so the charts to offer are named in the catalogue."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.base = config.location.rstrip("/")
        self._client: helm.RegistryClient | None = None
        self._lock = asyncio.Lock()

    def _registry(self) -> helm.RegistryClient:
        if self._client is None:
            self.config.cache_dir.mkdir(parents=True, exist_ok=True)
            # A private credentials file: never the user's or the host's Helm login.
            client = helm.RegistryClient(
                plain_http=self.config.plain_http,
                credentials_file=self.config.cache_dir / "registry-login.json",
            )
            if self.config.username is not None:
                host = self.base.removeprefix("oci://").split("/")[0]
                client.login(
                    host,
                    self.config.username,
                    self.config.password or "",
                    insecure=self.config.skip_tls_verify,
                    plain_http=self.config.plain_http,
                )
            self._client = client
        return self._client

    async def _call(self, what: str, call: Any) -> Any:
        def guarded() -> Any:
            try:
                return call()
            except helm.HelmError as exc:
                detail = redact(exc.detail or str(exc))
                if "not found" in detail.lower():
                    raise NotFound(f"{what}: {detail}") from None
                raise Unavailable(f"{what}: {detail}") from None

        async with self._lock:  # one registry client, used by one thread at a time
            return await asyncio.to_thread(guarded)

    async def index(self) -> dict[str, Any]:
        """An index built from each named chart's tags and pulled metadata."""
        entries: dict[str, list[dict[str, Any]]] = {}
        for chart in self.config.oci_charts:
            reference = f"{self.base}/{chart}"
            tags: list[str] = await self._call(
                f"listing {chart}", lambda r=reference: self._registry().tags(r)
            )
            for tag in tags:
                package = await self.package(chart, tag, (f"{reference}:{tag}",), "")
                metadata = dict((await asyncio.to_thread(read_contents, package)).metadata)
                metadata["urls"] = [f"{reference}:{tag}"]
                entries.setdefault(chart, []).append(metadata)
        return {"apiVersion": "v1", "entries": entries}

    async def package(self, name: str, version: str, urls: tuple[str, ...], digest: str) -> Path:
        """The pulled `.tgz`, cached by name and version (OCI tags are immutable by convention)."""
        target_dir = self.config.cache_dir / "oci"
        target = target_dir / f"{name}-{version}.tgz"
        if target.is_file():
            return target
        target_dir.mkdir(parents=True, exist_ok=True)
        reference = f"{self.base}/{name}"
        await self._call(
            f"pulling {name} {version}",
            lambda: helm.pull(
                reference,
                client=self._registry(),
                destination=target_dir,
                version=version,
                plain_http=self.config.plain_http,
                insecure_skip_tls_verify=self.config.skip_tls_verify,
            ),
        )
        if not target.is_file():
            raise NotFound(f"{name} {version}: the registry gave no package")
        return target

    async def close(self) -> None:
        """Close the registry client."""
        if self._client is not None:
            self._client.close()
            self._client = None
