"""Chart icons: fetched once from a real HTTP repository (or decoded from data:, or read from the
chart's folder), checked, kept in memory and on disk, and served from our own origin."""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devtools.helmrepo import HelmRepoServer, build_repository, package_charts
from onyxia_py.app import create_app
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import NotFound
from onyxia_py.settings import AuthSettings, CatalogSettings, DatabaseSettings, Settings

from ..support import wait_for_catalogs
from .icon_charts import SVG, RecordingServer, publish, tiny_png, write_chart

PNG = tiny_png()
# Icons elsewhere on this machine (another port is another origin) need the catalogue's leave.
LOOPBACK = {"allowedNetworks": ["127.0.0.0/8"]}
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def spec(location: str, **fields: Any) -> CatalogSpec:
    return CatalogSpec.model_validate(
        {"id": "icons", "name": "Icons", "location": location, **fields}
    )


def catalogs(tmp_path: Path, *specs: CatalogSpec, timeout: float = 5.0) -> Catalogs:
    settings = CatalogSettings(cache_dir=tmp_path / "cache", http_timeout_seconds=timeout)
    return Catalogs(settings, specs, base_dir=tmp_path)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    """A repository whose charts name icons of every kind, most served by itself."""
    directory = tmp_path_factory.mktemp("icon-repo")
    sources = tmp_path_factory.mktemp("icon-charts")
    with HelmRepoServer(directory) as server:
        files = {
            "logo.png": PNG,
            "logo.svg": SVG,
            "big.png": PNG + bytes(300 * 1024),  # a PNG's signature, but 300 KiB
            "page.png": b"<!doctype html><title>not an image</title>",
            "broken.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>',
            "plain.svg": b'<svg width="16" height="16"></svg>',  # no SVG namespace
            "flaky.png": PNG,
            "late.png": PNG,
        }
        (directory / "icons").mkdir()
        for name, data in files.items():
            (directory / "icons" / name).write_bytes(data)
        url = f"{server.url}/icons"
        icons = {
            "png": f"{url}/logo.png?sig=secret-sig",
            "svg": f"{url}/logo.svg",
            "big": f"{url}/big.png",
            "html": f"{url}/page.png",
            "broken-svg": f"{url}/broken.svg",
            "plain-svg": f"{url}/plain.svg",
            "missing": f"{url}/missing.png",
            "flaky": f"{url}/flaky.png",
            "late": f"{url}/late.png",
            "unreachable": "http://someone:pa55word@127.0.0.1:1/icon.png?sig=secret-sig",
            "data": "data:image/png;base64," + base64.b64encode(PNG).decode(),
            "data-svg": "data:image/svg+xml;utf8," + SVG.decode(),
            "bad-data": "data:image/png;base64,not*base64",
            "ftp": "ftp://127.0.0.1/icon.png",
            "bad-port": "http://127.0.0.1:port/icon.png?token=secret",
            "none": "",
        }
        publish(server, [write_chart(sources, name, icon) for name, icon in icons.items()])
        yield server


@pytest.fixture
async def service(repo: HelmRepoServer, tmp_path: Path) -> AsyncIterator[Catalogs]:
    loaded = catalogs(tmp_path, spec(repo.url, **LOOPBACK))
    assert (await loaded.refresh("icons")).last_error is None
    yield loaded
    await loaded.stop()


async def test_icons_are_fetched_once_checked_and_kept_on_disk(
    repo: HelmRepoServer, service: Catalogs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    repo.reset_hits()
    caplog.set_level(logging.INFO)
    png = await service.icon("icons", "png")
    assert (png.data, png.content_type) == (PNG, "image/png")
    # httpx logs each request; never with the query string (icon URLs may be signed).
    assert "/icons/logo.png " in caplog.text
    assert "secret-sig" not in caplog.text
    svg = await service.icon("icons", "svg")
    assert (svg.data, svg.content_type) == (SVG, "image/svg+xml")
    assert await service.icon("icons", "png") == png
    assert repo.hit_count("/icons/logo.png") == 1
    kept = sorted((tmp_path / "cache").glob("icons-*/icons/*.icon"))
    assert sorted(p.read_bytes() for p in kept) == sorted([PNG, SVG])

    # A restarted platform finds them on disk: the repository is not asked again.
    restarted = catalogs(tmp_path, spec(repo.url))
    await restarted.refresh("icons")
    assert await restarted.icon("icons", "svg") == svg
    assert repo.hit_count("/icons/logo.svg") == 1
    await restarted.stop()


@pytest.mark.parametrize(
    ("chart", "path", "reason"),
    [
        ("big", "/icons/big.png", "larger than 256 KiB"),
        ("html", "/icons/page.png", "not a PNG, JPEG, GIF, WebP or SVG image"),
        ("broken-svg", "/icons/broken.svg", "not a PNG, JPEG, GIF, WebP or SVG image"),
        ("plain-svg", "/icons/plain.svg", "not a PNG, JPEG, GIF, WebP or SVG image"),
        ("missing", "/icons/missing.png", "not found"),
    ],
)
async def test_refused_icons_are_not_found_and_not_fetched_again(
    repo: HelmRepoServer, service: Catalogs, chart: str, path: str, reason: str
) -> None:
    repo.reset_hits()
    with pytest.raises(NotFound, match=reason):
        await service.icon("icons", chart)
    with pytest.raises(NotFound, match=reason):
        await service.icon("icons", chart)
    assert repo.hit_count(path) == 1


async def test_a_failing_host_is_not_asked_again_for_a_while(
    repo: HelmRepoServer, service: Catalogs
) -> None:
    repo.reset_hits()
    repo.set_fault("flaky.png", "500")
    try:
        with pytest.raises(NotFound, match="HTTP 500"):
            await service.icon("icons", "flaky")
    finally:
        repo.clear_faults()
    # The host is fine again, but the failure is remembered (ten minutes): no refetch storm.
    with pytest.raises(NotFound, match="HTTP 500"):
        await service.icon("icons", "flaky")
    assert repo.hit_count("flaky.png") == 1


async def test_an_unreachable_host_or_a_slow_one_is_not_found(
    repo: HelmRepoServer, service: Catalogs, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotFound, match=re.escape("http://127.0.0.1:1/icon.png: ConnectError")):
        await service.icon("icons", "unreachable")
    assert "127.0.0.1:1/icon.png" in caplog.text
    for secret in ("pa55word", "secret-sig", "someone"):
        assert secret not in caplog.text
    started = time.monotonic()
    with pytest.raises(NotFound, match="ConnectError"):
        await service.icon("icons", "unreachable")
    assert time.monotonic() - started < 0.1
    (tmp_path / "slow").mkdir()
    with HelmRepoServer(tmp_path / "slow") as slow:
        (tmp_path / "slow" / "logo.png").write_bytes(PNG)
        publish(slow, [write_chart(tmp_path / "sources", "slow", f"{slow.url}/logo.png")])
        impatient = catalogs(tmp_path / "impatient", spec(slow.url), timeout=1.0)
        assert (await impatient.refresh("icons")).last_error is None
        slow.set_fault("logo.png", "slow", delay=3.0)
        started = time.monotonic()
        with pytest.raises(NotFound, match="not received within 1s"):
            await impatient.icon("icons", "slow")
        assert time.monotonic() - started < 2.5
        await impatient.stop()


async def test_data_icons_and_icons_that_cannot_be(service: Catalogs) -> None:
    png = await service.icon("icons", "data")
    assert (png.data, png.content_type) == (PNG, "image/png")
    svg = await service.icon("icons", "data-svg")
    assert (svg.data, svg.content_type) == (SVG, "image/svg+xml")
    with pytest.raises(NotFound, match="invalid base64"):
        await service.icon("icons", "bad-data")
    with pytest.raises(NotFound, match="data:, http"):
        await service.icon("icons", "ftp")
    with pytest.raises(NotFound, match="<an invalid URL>: InvalidURL") as refused:
        await service.icon("icons", "bad-port")
    assert "secret" not in str(refused.value)
    with pytest.raises(NotFound, match="has no icon"):
        await service.icon("icons", "none")
    with pytest.raises(NotFound, match="no chart"):
        await service.icon("icons", "nope")


async def test_folder_catalogue_icons_are_read_from_the_chart_folder(tmp_path: Path) -> None:
    folder = tmp_path / "charts"
    write_chart(folder, "relative", "icons/logo.svg", {"icons/logo.svg": SVG})
    write_chart(folder, "dotted", "./logo.png", {"logo.png": PNG})
    write_chart(folder, "escaping", "../relative/icons/logo.svg")
    write_chart(folder, "absolute", str(folder / "relative" / "icons" / "logo.svg"))
    write_chart(folder, "file-url", f"file://{folder}/relative/icons/logo.svg")
    service = catalogs(tmp_path, spec(str(folder)))
    assert (await service.refresh("icons")).last_error is None
    assert await service.icon("icons", "relative") == await service.icon("icons", "relative")
    assert (await service.icon("icons", "relative")).content_type == "image/svg+xml"
    assert (await service.icon("icons", "dotted")).data == PNG
    for outside in ("escaping", "absolute"):
        with pytest.raises(NotFound, match="not a file in the chart's folder"):
            await service.icon("icons", outside)
    with pytest.raises(NotFound, match="data:, http"):
        await service.icon("icons", "file-url")


async def test_credentials_go_to_the_repository_only(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "away").mkdir()
    with RecordingServer(tmp_path / "repo") as own, RecordingServer(tmp_path / "away") as away:
        own.routes["/own.png"] = (200, {"Content-Type": "image/png"}, PNG)
        own.routes["/moved.png"] = (302, {"Location": f"{away.url}/other.png"}, b"")
        away.routes["/other.png"] = (200, {"Content-Type": "image/png"}, PNG)
        sources = tmp_path / "sources"
        charts = [
            write_chart(sources, "own", f"{own.url}/own.png"),
            write_chart(sources, "other", f"{away.url}/other.png"),
            write_chart(sources, "moved", f"{own.url}/moved.png"),
        ]
        package_charts(charts, own.directory)
        build_repository(own.directory, own.url)
        credentials = {"username": "reader", "password": "s3cret-pw", **LOOPBACK}
        service = catalogs(tmp_path, spec(own.url, **credentials))
        assert (await service.refresh("icons")).last_error is None
        for chart in ("own", "other", "moved"):
            assert (await service.icon("icons", chart)).data == PNG
        expected = "Basic " + base64.b64encode(b"reader:s3cret-pw").decode()
        assert own.authorizations("/index.yaml") == [expected]
        assert own.authorizations("/own.png") == [expected]
        assert own.authorizations("/moved.png") == [expected]
        # Another host, asked directly or through the repository's redirect, never gets them.
        assert away.authorizations("/other.png") == [None, None]


async def test_tls_settings_of_the_catalogue_apply(tmp_path: Path) -> None:
    (tmp_path / "secure").mkdir()
    (tmp_path / "plain").mkdir()
    with (
        HelmRepoServer(tmp_path / "secure", tls=True) as secure,
        HelmRepoServer(tmp_path / "plain") as plain,
    ):
        assert secure.ca_file is not None
        ca_file = str(secure.ca_file)
        (tmp_path / "secure" / "logo.png").write_bytes(PNG)
        icon = f"{secure.url}/logo.png"
        publish(secure, [write_chart(tmp_path / "a", "own", icon)])
        publish(plain, [write_chart(tmp_path / "b", "elsewhere", icon)])
        # The repository's own host: its CA file, or no verification if the catalogue says so.
        verifying: list[dict[str, Any]] = [{"caFile": ca_file}, {"skipTlsVerify": True}]
        for number, fields in enumerate(verifying):
            own = catalogs(tmp_path / f"own-{number}", spec(secure.url, **fields))
            assert (await own.refresh("icons")).last_error is None
            assert (await own.icon("icons", "own")).data == PNG
            await own.stop()
        # Another host: the system's CAs plus the catalogue's CA file; never unverified.
        trusting = catalogs(tmp_path / "trusting", spec(plain.url, caFile=ca_file, **LOOPBACK))
        assert (await trusting.refresh("icons")).last_error is None
        assert (await trusting.icon("icons", "elsewhere")).data == PNG
        await trusting.stop()
        no_ca: list[dict[str, Any]] = [LOOPBACK, {"skipTlsVerify": True, **LOOPBACK}]
        for number, fields in enumerate(no_ca):
            strict = catalogs(tmp_path / f"strict-{number}", spec(plain.url, **fields))
            assert (await strict.refresh("icons")).last_error is None
            with pytest.raises(NotFound, match="ConnectError"):
                await strict.icon("icons", "elsewhere")
            await strict.stop()


@pytest.fixture
def client(repo: HelmRepoServer, tmp_path: Path) -> Iterator[TestClient]:
    definitions = [
        {"id": "icons", "name": "Icons", "location": repo.url, **LOOPBACK},
        {
            "id": "restricted",
            "name": "For the ops group",
            "location": repo.url,
            "restrictions": [{"userAttribute": {"key": "groups", "matches": "ops"}}],
        },
    ]
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"),
        catalogs=CatalogSettings(paths=[], definitions=definitions, cache_dir=tmp_path / "cache"),
        auth=AuthSettings(local_username="alice"),
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        wait_for_catalogs(test_client.get)
        yield test_client


def test_the_icon_route_serves_icons_with_safe_headers(client: TestClient) -> None:
    charts = {c["name"]: c for c in client.get("/api/catalogs/icons").json()["charts"]}
    assert charts["png"]["icon_url"] == "/api/catalogs/icons/charts/png/icon"
    assert charts["none"]["icon_url"] == ""

    png = client.get("/api/catalogs/icons/charts/png/icon")
    assert png.status_code == 200
    assert png.content == PNG
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "private, max-age=86400"
    assert png.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" not in png.headers["content-security-policy"]
    again = client.get(
        "/api/catalogs/icons/charts/png/icon", headers={"If-None-Match": png.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""

    svg = client.get("/api/catalogs/icons/charts/svg/icon")
    assert svg.status_code == 200
    assert svg.content == SVG
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-security-policy"] == SVG_POLICY
    assert svg.headers.get_list("content-security-policy") == [SVG_POLICY]
    assert svg.headers["x-content-type-options"] == "nosniff"

    with_project = client.get("/api/catalogs/icons/charts/svg/icon?project=user-alice")
    assert with_project.content == SVG


def test_missing_icons_are_404_problems(client: TestClient) -> None:
    for path, detail in [
        ("/api/catalogs/icons/charts/big/icon", "larger than 256 KiB"),
        ("/api/catalogs/icons/charts/unreachable/icon", "ConnectError"),
        ("/api/catalogs/icons/charts/none/icon", "has no icon"),
        ("/api/catalogs/icons/charts/nope/icon", "no chart"),
        ("/api/catalogs/restricted/charts/png/icon", "no catalogue"),
    ]:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert detail in answer.json()["detail"], path
        assert "cache-control" not in answer.headers, path


def test_a_slow_icon_answers_404_at_once_and_is_served_once_fetched(
    client: TestClient, repo: HelmRepoServer
) -> None:
    # A page's icons must not hold the browser's connections while another site is slow.
    repo.set_fault("late.png", "slow", delay=3.5)
    try:
        started = time.monotonic()
        first = client.get("/api/catalogs/icons/charts/late/icon")
        assert time.monotonic() - started < 3.4
        assert first.status_code == 404
        assert "still being fetched" in first.json()["detail"]
        for _ in range(100):  # the fetch went on in the background
            answer = client.get("/api/catalogs/icons/charts/late/icon")
            if answer.status_code == 200:
                break
            time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.content == PNG
    finally:
        repo.clear_faults()


def test_catalogue_cards_use_the_icon_route(client: TestClient) -> None:
    page = client.get("/catalog/icons")
    assert page.status_code == 200
    assert 'src="/api/catalogs/icons/charts/png/icon?project=user-alice"' in page.text
    assert "upload.wikimedia.org" not in page.text
    assert 'data-chart="none"' in page.text
    none_card = page.text.split('data-chart="none"', 1)[1].split("</li>", 1)[0]
    assert "chart-icon-img" not in none_card
    assert 'class="chart-icon monogram' in none_card
