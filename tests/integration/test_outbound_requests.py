"""Outbound requests against real local servers: URLs a repository's content names (icons,
package URLs, redirects) reach only public addresses unless the catalogue allows more; every
download has a size cap, a connect timeout and a deadline for the whole of it; every OCI
registry call has a deadline."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.helmrepo import (
    build_repository,
    fixture_repository,
    fixture_sources,
    package_charts,
)
from devtools.ociregistry import LocalOciRegistry, push_chart
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import NotFound
from onyxia_py.settings import CatalogSettings

from .icon_charts import tiny_png, write_chart
from .scripted_http import Route, ScriptedServer, redirect

PNG = tiny_png()
REFUSED = "not a public address"


def spec(location: str, **fields: Any) -> CatalogSpec:
    return CatalogSpec.model_validate({"id": "out", "name": "Out", "location": location, **fields})


def catalogs(tmp_path: Path, *specs: CatalogSpec, **settings: Any) -> Catalogs:
    chosen = {"http_timeout_seconds": 5.0, **settings}
    return Catalogs(CatalogSettings(cache_dir=tmp_path / "cache", **chosen), specs)


def serve_charts(server: ScriptedServer, icons: dict[str, str], tmp_path: Path) -> None:
    """Charts named after `icons`, each naming its icon, packaged and indexed on `server`."""
    sources = tmp_path / f"sources-{server.port}"
    package_charts([write_chart(sources, n, icon) for n, icon in icons.items()], server.directory)
    build_repository(server.directory, server.url)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[ScriptedServer]:
    """Another host on 127.0.0.1 (another port: another origin) serving an icon."""
    (tmp_path / "elsewhere").mkdir()
    with ScriptedServer(tmp_path / "elsewhere") as server:
        server.routes["/logo.png"] = Route(headers={"Content-Type": "image/png"}, body=PNG)
        yield server


async def test_icons_at_internal_addresses_are_refused_unless_the_catalogue_allows_them(
    tmp_path: Path, elsewhere: ScriptedServer
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "v6").mkdir()
    with ScriptedServer(tmp_path / "repo") as repo, ScriptedServer(tmp_path / "v6", "::1") as v6:
        repo.routes["/own.png"] = Route(body=PNG)
        v6.routes["/logo.png"] = Route(body=PNG)
        port = elsewhere.port
        serve_charts(
            repo,
            {
                "own": f"{repo.url}/own.png",
                "loopback": f"{elsewhere.url}/logo.png",
                "named": f"http://localhost:{port}/logo.png",
                "mapped": f"http://[::ffff:127.0.0.1]:{port}/logo.png",
                "v6": f"{v6.url}/logo.png",
                "metadata": "http://169.254.169.254/latest/meta-data/icon.png?token=secret",
                "private": "http://10.0.0.1/icon.png",
            },
            tmp_path,
        )
        strict = catalogs(tmp_path / "strict", spec(repo.url))
        assert (await strict.refresh("out")).last_error is None
        # The repository's own origin is the operator's choice: reached wherever it is.
        assert (await strict.icon("out", "own")).data == PNG
        reasons = {
            "loopback": "127.0.0.1 is not a public address",
            "named": "localhost resolves to 127.0.0.1, not a public address",
            "mapped": "::ffff:7f00:1 (127.0.0.1) is not a public address",
            "v6": "::1 is not a public address",
            "metadata": "169.254.169.254 is not a public address",
            "private": "10.0.0.1 is not a public address",
        }
        started = time.monotonic()
        for chart, reason in reasons.items():
            with pytest.raises(NotFound, match=re.escape(reason)) as refused:
                await strict.icon("out", chart)
            assert "allowedNetworks" in str(refused.value)
            assert "secret" not in str(refused.value)
        assert time.monotonic() - started < 2.0  # refused before any connection is tried
        assert elsewhere.hits() == 0
        assert v6.hits() == 0
        await strict.stop()

        allowing = spec(repo.url, allowedNetworks=["127.0.0.0/8", "::1"])
        trusting = catalogs(tmp_path / "trusting", allowing)
        assert (await trusting.refresh("out")).last_error is None
        for chart in ("loopback", "named", "v6"):
            assert (await trusting.icon("out", chart)).data == PNG, chart
        with pytest.raises(NotFound, match=re.escape("169.254.169.254 is not a public address")):
            await trusting.icon("out", "metadata")
        await trusting.stop()


async def test_a_redirect_to_an_internal_address_is_refused(
    tmp_path: Path, elsewhere: ScriptedServer
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "cdn").mkdir()
    # 127.0.0.2 stands for a public host: the catalogue allows exactly that address.
    with (
        ScriptedServer(tmp_path / "repo") as repo,
        ScriptedServer(tmp_path / "cdn", "127.0.0.2") as cdn,
    ):
        target = f"{elsewhere.url}/logo.png"
        cdn.routes["/fine.png"] = Route(body=PNG)
        cdn.routes["/to-loopback.png"] = redirect(target)
        cdn.routes["/to-name.png"] = redirect(f"http://localhost:{elsewhere.port}/logo.png")
        cdn.routes["/to-metadata.png"] = redirect("http://169.254.169.254/latest/meta-data/")
        repo.routes["/moved.png"] = redirect(target)
        serve_charts(
            repo,
            {
                "fine": f"{cdn.url}/fine.png",
                "to-loopback": f"{cdn.url}/to-loopback.png",
                "to-name": f"{cdn.url}/to-name.png",
                "to-metadata": f"{cdn.url}/to-metadata.png",
                "moved": f"{repo.url}/moved.png",
            },
            tmp_path,
        )
        service = catalogs(tmp_path, spec(repo.url, allowedNetworks=["127.0.0.2/32"]))
        assert (await service.refresh("out")).last_error is None
        assert (await service.icon("out", "fine")).data == PNG
        for chart, reason in [
            ("to-loopback", "127.0.0.1 is not a public address"),
            ("to-name", "localhost resolves to 127.0.0.1, not a public address"),
            ("to-metadata", "169.254.169.254 is not a public address"),
            ("moved", "127.0.0.1 is not a public address"),  # leaving the own origin: checked
        ]:
            with pytest.raises(NotFound, match=re.escape(reason)):
                await service.icon("out", chart)
        assert elsewhere.hits() == 0
        assert cdn.hits("/to-loopback.png") == 1
        await service.stop()


async def test_package_urls_on_other_hosts_and_redirects_of_the_index_are_checked(
    tmp_path: Path,
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "packages").mkdir()
    with (
        ScriptedServer(tmp_path / "repo") as repo,
        ScriptedServer(tmp_path / "packages") as packages,
    ):
        # The index is the repository's; its package URLs name another (internal) host.
        package_charts(fixture_sources(), packages.directory)
        shutil.copy(build_repository(packages.directory, packages.url), repo.directory)
        strict = catalogs(tmp_path / "strict", spec(repo.url))
        status = await strict.refresh("out")
        assert status.last_error is not None
        assert f"{packages.url}/" in status.last_error
        assert f"127.0.0.1 is {REFUSED}" in status.last_error
        assert packages.hits() == 0
        allowing = catalogs(tmp_path / "allowing", spec(repo.url, allowedNetworks=["127.0.0.1"]))
        assert (await allowing.refresh("out")).last_error is None

        # An index that redirects away from the repository's origin is judged the same way.
        repo.routes["/index.yaml"] = redirect(f"{packages.url}/index.yaml")
        moved = await catalogs(tmp_path / "moved", spec(repo.url)).refresh("out")
        assert moved.last_error is not None
        assert f"127.0.0.1 is {REFUSED}" in moved.last_error
        assert packages.hits("/index.yaml") == 0


def padded_index(size: int) -> bytes:
    """A valid, empty Helm index of at least `size` bytes."""
    return b"apiVersion: v1\nentries: {}\n" + b"# padding\n" * (size // 10)


@pytest.mark.parametrize("declared", [True, False])
async def test_an_oversize_index_is_refused(tmp_path: Path, declared: bool) -> None:
    with ScriptedServer(tmp_path) as repo:
        repo.routes["/index.yaml"] = Route(body=padded_index(200_000), declare_length=declared)
        service = catalogs(tmp_path, spec(repo.url), max_index_bytes=64 * 1024)
        status = await service.refresh("out")
        assert status.last_error == (
            f"{repo.url}/index.yaml: larger than 64 KiB (catalogs.max_index_bytes)"
        )
        repo.routes["/index.yaml"] = Route(body=padded_index(60_000), declare_length=declared)
        assert (await service.refresh("out")).last_error is None


async def test_an_oversize_package_is_refused(tmp_path: Path) -> None:
    with fixture_repository() as repo:
        service = catalogs(tmp_path, spec(repo.url), max_package_bytes=2048)
        status = await service.refresh("out")
        assert status.last_error is not None
        assert "jupyter-lite-2.0.0.tgz: larger than 2 KiB (catalogs.max_package_bytes)" in (
            status.last_error
        )
        assert not list((tmp_path / "cache").rglob("jupyter-lite-*.tgz"))


@pytest.mark.parametrize("what", ["index", "package", "icon"])
async def test_a_slow_drip_hits_the_deadline_of_the_whole_download(
    tmp_path: Path, what: str
) -> None:
    # One byte every 50 ms: no read ever waits long, but the whole would take 10 s.
    index = json.dumps(
        {
            "apiVersion": "v1",
            "entries": {"slow": [{"name": "slow", "version": "1.0.0", "urls": ["slow-1.0.0.tgz"]}]},
        }
    ).encode()
    with ScriptedServer(tmp_path) as repo:
        if what == "index":
            repo.routes["/index.yaml"] = Route(body=padded_index(200), drip=0.05)
        elif what == "package":
            repo.routes["/index.yaml"] = Route(body=index)
            repo.routes["/slow-1.0.0.tgz"] = Route(body=bytes(200), drip=0.05)
        else:
            repo.routes["/slow.png"] = Route(body=PNG + bytes(200), drip=0.05)
            serve_charts(repo, {"slow": f"{repo.url}/slow.png"}, tmp_path)
        service = catalogs(tmp_path, spec(repo.url), http_timeout_seconds=1.0)
        started = time.monotonic()
        if what == "icon":
            assert (await service.refresh("out")).last_error is None
            with pytest.raises(NotFound, match=r"slow\.png: not received within 1s"):
                await service.icon("out", "slow")
        else:
            status = await service.refresh("out")
            assert status.last_error is not None
            assert "not received within 1s (catalogs.http_timeout_seconds)" in status.last_error
        assert time.monotonic() - started < 2.5
        assert repo.dripped < 100
        await service.stop()


async def test_a_host_that_never_accepts_hits_the_connect_timeout(tmp_path: Path) -> None:
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so
    # connecting hangs (the way a firewalled host behaves).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(3):
            try:
                fillers.append(socket.create_connection(listener.getsockname(), timeout=0.3))
            except OSError:
                break
        try:
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            service = catalogs(
                tmp_path, spec(url), http_connect_timeout_seconds=0.5, http_timeout_seconds=10.0
            )
            started = time.monotonic()
            status = await service.refresh("out")
            assert status.last_error == (
                f"{url}/index.yaml: no connection within 0.5s "
                "(catalogs.http_connect_timeout_seconds)"
            )
            assert time.monotonic() - started < 3.0
        finally:
            for filler in fillers:
                filler.close()


async def test_an_oci_registry_call_has_a_deadline(tmp_path: Path) -> None:
    with ScriptedServer(tmp_path) as registry:
        # Every registry request answers, then drips its body for 10 s.
        registry.routes["*"] = Route(
            headers={"Content-Type": "application/json"}, body=b" " * 200 + b"{}", drip=0.05
        )
        location = f"oci://127.0.0.1:{registry.port}/charts"
        service = catalogs(
            tmp_path,
            spec(location, plainHttp=True, ociCharts=["jupyter-lite"]),
            http_timeout_seconds=1.0,
        )
        started = time.monotonic()
        status = await service.refresh("out")
        assert status.last_error == (
            "listing jupyter-lite: no answer within 1s (catalogs.http_timeout_seconds)"
        )
        assert time.monotonic() - started < 2.5
        # The overrunning call still holds the registry client: no second call piles up.
        started = time.monotonic()
        waiting = (await service.refresh("out")).last_error
        assert waiting == "listing jupyter-lite: the registry has not finished an earlier call yet"
        assert time.monotonic() - started < 0.5
    # The registry is gone: the overrunning call ends, and the next call is made (and fails).
    for _ in range(100):
        last = (await service.refresh("out")).last_error
        if last != waiting:
            break
        await asyncio.sleep(0.1)
    assert last is not None
    assert "connection refused" in last
    await service.stop()


async def test_an_oversize_oci_package_is_not_kept(tmp_path: Path) -> None:
    with LocalOciRegistry() as registry:
        for archive in package_charts(fixture_sources(), tmp_path / "packages"):
            push_chart(registry, archive)
        service = catalogs(
            tmp_path,
            spec(registry.url, plainHttp=True, ociCharts=["jupyter-lite"]),
            max_package_bytes=2048,
        )
        status = await service.refresh("out")
        assert status.last_error is not None
        assert "the package is larger than 2 KiB (catalogs.max_package_bytes)" in status.last_error
        assert not list((tmp_path / "cache").rglob("jupyter-lite-*.tgz"))
