"""Charts in an OCI registry (`oci://host/path`): tags are the versions, packages are pulled."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import helm_python as helm

from onyxia_py.errors import Invalid, NotFound, Unavailable
from onyxia_py.helm.archive import read_contents
from onyxia_py.helm.outbound import size_text
from onyxia_py.helm.sources import SourceConfig
from onyxia_py.logs import redact

T = TypeVar("T")


class OciSource:
    """An OCI registry; it has no index, so the charts to offer are named in the catalogue.
    Each registry call has the catalogue's deadline; one that overruns it is left to finish in
    its own thread, and the registry gets no other call until it has."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.base = config.location.rstrip("/")
        self._client: helm.RegistryClient | None = None
        self._lock = asyncio.Lock()
        self._overrun: asyncio.Future[Any] | None = None

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

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return call()
            except helm.HelmError as exc:
                detail = redact(exc.detail or str(exc))
                if "not found" in detail.lower():
                    raise NotFound(f"{what}: {detail}") from None
                raise Unavailable(f"{what}: {detail}") from None

        seconds = self.config.timeout_seconds
        async with self._lock:  # one registry client, used by one thread at a time
            if self._overrun is not None and not self._overrun.done():
                raise Unavailable(f"{what}: the registry has not finished an earlier call yet")
            running = _in_own_thread(guarded)
            try:
                async with asyncio.timeout(seconds):
                    return await asyncio.shield(running)
            except TimeoutError:
                raise Unavailable(
                    f"{what}: no answer within {seconds:g}s (catalogs.http_timeout_seconds)"
                ) from None
            finally:
                if not running.done():  # its thread still uses the client
                    self._overrun = running
                    running.add_done_callback(_outcome_seen)

    async def index(self) -> dict[str, Any]:
        """An index built from each named chart's tags and pulled metadata."""
        entries: dict[str, list[dict[str, Any]]] = {}
        for chart in self.config.oci_charts:
            reference = f"{self.base}/{chart}"
            tags = await self._call(f"listing {chart}", functools.partial(self._tags, reference))
            for tag in tags:
                package = await self.package(chart, tag, (f"{reference}:{tag}",), "")
                metadata = dict((await asyncio.to_thread(read_contents, package)).metadata)
                metadata["urls"] = [f"{reference}:{tag}"]
                entries.setdefault(chart, []).append(metadata)
        return {"apiVersion": "v1", "entries": entries}

    def _tags(self, reference: str) -> list[str]:
        return self._registry().tags(reference)

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
        # The registry client has no size cap of its own: an oversize package is not kept.
        limit = self.config.max_package_bytes
        if target.stat().st_size > limit:
            target.unlink(missing_ok=True)
            raise Invalid(
                f"{name} {version}: the package is larger than {size_text(limit)} "
                "(catalogs.max_package_bytes)"
            )
        return target

    async def close(self) -> None:
        """Close the registry client (once an overrunning call has finished with it)."""
        if self._overrun is not None and not self._overrun.done():
            self._overrun.add_done_callback(lambda _: self._close_client())
        else:
            self._close_client()

    def _close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _outcome_seen(done: asyncio.Future[Any]) -> None:
    # Nobody awaits an overrun call any more: its error is not news (the deadline was).
    if not done.cancelled():
        done.exception()


def _in_own_thread(call: Callable[[], T]) -> asyncio.Future[T]:
    """`call()` in a daemon thread of its own. A native call cannot be interrupted: one that
    hangs must neither hold a worker of the shared pool nor keep the process from exiting."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.cancelled():
            outcome()

    def run() -> None:
        try:
            result = call()
        except Exception as exc:
            outcome = functools.partial(future.set_exception, exc)
        else:
            outcome = functools.partial(future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=run, name="oci-registry-call", daemon=True).start()
    return future
