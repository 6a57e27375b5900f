"""Chart dependencies as Helm resolves them (issue #16): a dependency the package carries under
`charts/` is used as it is, a missing one comes from the catalogue's repository or else from the
repository it names, through the catalogue's checked outbound path (public addresses unless
allowedNetworks says more, its credentials only at its own origin, capped, time-limited, cached).
Against real HTTP Helm repositories on 127.0.0.1 (tests/fixtures/deps)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.helmrepo import HelmRepoServer, build_repository, package_charts, retargeted
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import Invalid, OperationFailed, Unavailable
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.settings import CatalogSettings, HelmSettings

from .dependency_charts import DEPS, REFUSED, publish, serve_sidecar


def catalogs(
    tmp_path: Path, location: str, settings: dict[str, Any] | None = None, **fields: Any
) -> Catalogs:
    spec = CatalogSpec.model_validate(
        {"id": "deps", "name": "Deps", "location": location, **fields}
    )
    chosen = {"cache_dir": tmp_path / "cache", "http_timeout_seconds": 5.0, **(settings or {})}
    return Catalogs(CatalogSettings(**chosen), [spec])


def kinds(manifests: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each rendered object by `Kind/name`."""
    found = {}
    for name, text in manifests.items():
        if name.endswith(".yaml"):
            for document in yaml.safe_load_all(text):
                if document:
                    found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


async def render(files_dir: Path, release: str) -> dict[str, dict[str, Any]]:
    engine = SdkHelmEngine(HelmSettings())
    return kinds(await engine.render(files_dir, {}, release=release, namespace="user-alice"))


@pytest.fixture
def second(tmp_path: Path) -> Any:
    (tmp_path / "second").mkdir()
    with HelmRepoServer(tmp_path / "second") as server:
        yield server


@pytest.fixture
def first(tmp_path: Path) -> Any:
    (tmp_path / "first").mkdir()
    with HelmRepoServer(tmp_path / "first") as server:
        yield server


async def test_a_package_carrying_its_library_and_sub_chart_needs_no_repository(
    tmp_path: Path, first: HelmRepoServer
) -> None:
    location = publish(first, ["bundled"], extras="https://charts.example.invalid/x", work=tmp_path)
    service = catalogs(tmp_path, location)
    assert (await service.refresh("deps")).last_error is None
    first.reset_hits()
    files = await service.chart_files("deps", "bundled", None)
    assert first.hits == {}  # nothing fetched: both are in the package
    made = await render(files.directory, "b1")
    assert made["ConfigMap/b1-settings"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == (
        "deps-library"
    )
    assert made["ConfigMap/b1-sidecar"]["data"]["greeting"] == "hello from bundled"


async def test_a_dependency_in_a_second_repository_is_fetched_once_and_cached(
    tmp_path: Path, first: HelmRepoServer, second: HelmRepoServer
) -> None:
    extras = serve_sidecar(second)
    location = publish(first, ["fetched"], extras=extras, work=tmp_path)
    service = catalogs(tmp_path, location, allowedNetworks=["127.0.0.1/32"])
    assert (await service.refresh("deps")).last_error is None
    files = await service.chart_files("deps", "fetched", None)
    vendored = sorted(p.name.rsplit("-", 1)[0] for p in (files.directory / "charts").iterdir())
    assert vendored == ["deps-library-0.3.0", "sidecar-2.1.0"]
    made = await render(files.directory, "f1")
    assert made["ConfigMap/f1-sidecar"]["data"]["greeting"] == "hello from fetched"
    assert made["ConfigMap/f1-settings"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == (
        "deps-library"
    )
    # One index download for both dependencies, one download of each package.
    assert second.hit_count("/extras/index.yaml") == 1
    assert second.hit_count("/extras/sidecar-2.1.0.tgz") == 1
    assert second.hit_count("/extras/deps-library-0.3.0.tgz") == 1
    await service.stop()
    # Another process, the same cache: the assembled chart is reused, no repository asked.
    second.set_fault("", "500")
    again = catalogs(tmp_path, location, allowedNetworks=["127.0.0.1/32"])
    assert (await again.refresh("deps")).last_error is None
    assert (await again.chart_files("deps", "fetched", None)).directory == files.directory
    assert second.hit_count("/extras/index.yaml") == 1
    await again.stop()


async def test_a_second_repository_is_reached_only_where_the_catalogue_allows(
    tmp_path: Path, first: HelmRepoServer, second: HelmRepoServer
) -> None:
    extras = serve_sidecar(second)
    location = publish(first, ["fetched", "stray"], extras=extras, work=tmp_path)
    strict = catalogs(tmp_path / "strict", location)
    assert (await strict.refresh("deps")).last_error is None
    with pytest.raises(Invalid) as refused:
        await strict.chart_files("deps", "fetched", None)
    assert refused.value.detail == (
        f"fetched 1.0.0 needs sidecar ~2.1: {extras}/index.yaml: {REFUSED}"
    )
    assert second.hits == {}
    allowing = catalogs(tmp_path / "allowing", location, allowedNetworks=["127.0.0.1/32"])
    assert (await allowing.refresh("deps")).last_error is None
    with pytest.raises(Invalid) as missing:
        await allowing.chart_files("deps", "stray", None)
    assert missing.value.detail == (
        "stray 1.0.0 needs sidecar 9.0.0, which neither its package (charts/), its "
        f"catalogue's repository nor {extras} has"
    )


@pytest.mark.parametrize(
    ("fault", "settings", "reason"),
    [
        ("slow", {"http_timeout_seconds": 1.0}, "not received within 1s"),
        (None, {"max_package_bytes": 1024}, "larger than 1 KiB (catalogs.max_package_bytes)"),
    ],
)
async def test_fetching_a_dependency_is_time_limited_and_size_capped(
    tmp_path: Path,
    first: HelmRepoServer,
    second: HelmRepoServer,
    fault: Any,
    settings: dict[str, Any],
    reason: str,
) -> None:
    extras = serve_sidecar(second)
    padding = second.directory / "extras" / "sidecar-2.1.0.tgz"
    if settings.get("max_package_bytes"):
        # The package itself must be large; pad the sidecar and re-index so its digest matches.
        work = tmp_path / "big"
        big = retargeted(DEPS / "sidecar", work, {})
        (big / "padding.txt").write_bytes(os.urandom(4096))
        padding.unlink()
        package_charts([big], second.directory / "extras")
        build_repository(second.directory / "extras", extras)
    location = publish(first, ["fetched"], extras=extras, work=tmp_path)
    service = catalogs(tmp_path, location, allowedNetworks=["127.0.0.1/32"], settings=settings)
    assert (await service.refresh("deps")).last_error is None
    if fault:
        second.set_fault("/extras/index.yaml", fault, delay=3.0)
    expected = Unavailable if fault else Invalid
    with pytest.raises(expected) as failed:
        await service.chart_files("deps", "fetched", None)
    assert failed.value.detail.startswith("fetched 1.0.0 needs sidecar ~2.1: ")
    assert reason in failed.value.detail
    await service.stop()


async def test_the_catalogue_credentials_go_to_its_own_origin_only(tmp_path: Path) -> None:
    (tmp_path / "private").mkdir()
    (tmp_path / "other").mkdir()
    password = "s3cret-pw"
    login: dict[str, Any] = {"username": "reader", "password": password}
    with (
        HelmRepoServer(tmp_path / "private", username="reader", password=password) as private,
        HelmRepoServer(tmp_path / "other", username="reader", password=password) as other,
    ):
        # The second repository at the catalogue's own origin gets its credentials...
        same_origin = serve_sidecar(private)
        location = publish(private, ["fetched"], extras=same_origin, work=tmp_path / "a")
        service = catalogs(tmp_path / "a", location, **login)
        assert (await service.refresh("deps")).last_error is None
        files = await service.chart_files("deps", "fetched", None)
        assert len(list((files.directory / "charts").glob("*.tgz"))) == 2
        assert private.credentialed_count("/extras/index.yaml") == 1
        assert private.credentialed_count("/extras/sidecar-2.1.0.tgz") == 1
        await service.stop()

        # ...one at another origin never does, even when it asks for the same ones.
        elsewhere = serve_sidecar(other)
        (private.directory / "main").rename(tmp_path / "old-main")
        location = publish(private, ["fetched"], extras=elsewhere, work=tmp_path / "b")
        service = catalogs(tmp_path / "b", location, allowedNetworks=["127.0.0.1/32"], **login)
        assert (await service.refresh("deps")).last_error is None
        with pytest.raises(OperationFailed) as refused:
            await service.chart_files("deps", "fetched", None)
        assert refused.value.detail == (
            f"fetched 1.0.0 needs sidecar ~2.1: {elsewhere}/index.yaml: HTTP 401 (the "
            "catalogue's credentials go to its own origin only)"
        )
        assert other.hit_count("/extras/index.yaml") == 1
        assert other.credentialed_count() == 0
        assert password not in refused.value.detail
        await service.stop()
