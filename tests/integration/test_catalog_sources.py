"""Catalogues loaded from a real HTTP Helm repository and a real OCI registry."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.helmrepo import HelmRepoServer, fixture_repository, fixture_sources, package_charts
from devtools.ociregistry import LocalOciRegistry, push_chart
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import Unavailable
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.settings import CatalogSettings, HelmSettings


def spec(location: str, **fields: Any) -> CatalogSpec:
    return CatalogSpec.model_validate(
        {"id": "ide", "name": "IDE", "location": location, "multipleServicesMode": "all", **fields}
    )


def catalogs(tmp_path: Path, *specs: CatalogSpec, timeout: float = 5.0) -> Catalogs:
    settings = CatalogSettings(cache_dir=tmp_path / "cache", http_timeout_seconds=timeout)
    return Catalogs(settings, specs, base_dir=tmp_path)


@pytest.fixture(scope="module")
def repo() -> Iterator[HelmRepoServer]:
    with fixture_repository() as server:
        yield server


async def test_http_repository_loads(repo: HelmRepoServer, tmp_path: Path) -> None:
    service = catalogs(tmp_path, spec(repo.url, highlightedCharts=["rstudio-lite"]))
    status = await service.refresh("ide")
    assert status.last_error is None
    assert status.chart_count == 2
    loaded = service.loaded("ide")
    assert [c.name for c in loaded.charts] == ["rstudio-lite", "jupyter-lite"]
    jupyter = loaded.chart("jupyter-lite")
    assert jupyter is not None
    assert [v.version for v in jupyter.versions] == ["2.0.0", "1.1.0", "1.0.0"]
    # Every offered package is on disk, so forms never wait on the repository.
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.tgz"))
    assert len(cached) == 4
    repo.reset_hits()
    await service.refresh("ide")
    assert repo.hit_count(".tgz") == 0
    assert repo.hit_count("index.yaml") == 1


async def test_dependency_from_the_same_repository_renders_offline(
    repo: HelmRepoServer, tmp_path: Path
) -> None:
    service = catalogs(tmp_path, spec(repo.url))
    await service.refresh("ide")
    files = await service.chart_files("ide", "jupyter-lite", "1.1.0")
    assert (files.directory / "charts").is_dir()
    assert files.schema is not None
    assert files.values["service"]["image"]["version"].startswith("inseefrlab/")
    repo.set_fault("", "500")  # the repository is gone: rendering needs nothing from it
    try:
        engine = SdkHelmEngine(HelmSettings())
        manifests = await engine.render(
            files.directory, {}, release="jupyter-lite-1", namespace="user-alice"
        )
    finally:
        repo.clear_faults()
    kinds = "\n".join(m for name, m in manifests.items() if name.endswith(".yaml"))
    assert "kind: StatefulSet" in kinds
    assert "jupyter-lite-1" in kinds


async def test_basic_auth(tmp_path: Path) -> None:
    with fixture_repository(username="reader", password="s3cret-pw") as private:
        good = catalogs(tmp_path / "a", spec(private.url, username="reader", password="s3cret-pw"))
        assert (await good.refresh("ide")).last_error is None
        bad = catalogs(tmp_path / "b", spec(private.url, username="reader", password="wrong"))
        status = await bad.refresh("ide")
        assert status.last_error is not None
        assert "credentials" in status.last_error
        assert "wrong" not in status.last_error
        anonymous = catalogs(tmp_path / "c", spec(private.url))
        assert (await anonymous.refresh("ide")).last_error is not None


async def test_tls_with_a_custom_ca(tmp_path: Path) -> None:
    with fixture_repository(tls=True) as secure:
        assert secure.ca_file is not None
        trusted = catalogs(tmp_path / "a", spec(secure.url, caFile=str(secure.ca_file)))
        assert (await trusted.refresh("ide")).last_error is None
        untrusted = catalogs(tmp_path / "b", spec(secure.url))
        assert (await untrusted.refresh("ide")).last_error is not None
        skipping = catalogs(tmp_path / "c", spec(secure.url, skipTlsVerify=True))
        assert (await skipping.refresh("ide")).last_error is None


@pytest.mark.parametrize(
    ("fault_path", "kind", "reason"),
    [
        ("index.yaml", "garbage", "index"),
        ("index.yaml", "500", "HTTP 500"),
        ("jupyter-lite-2.0.0.tgz", "404", "not found"),
        ("index.yaml", "slow", "not received within 1s"),
    ],
)
async def test_a_broken_repository_keeps_the_last_good_catalogue(
    tmp_path: Path, fault_path: str, kind: Any, reason: str
) -> None:
    with fixture_repository() as flaky:
        service = catalogs(tmp_path, spec(flaky.url), timeout=1.0)
        first = await service.refresh("ide")
        assert first.last_error is None
        good = service.loaded("ide")
        shutil.rmtree(tmp_path / "cache")  # force package downloads again
        flaky.set_fault(fault_path, kind, delay=3.0)
        status = await service.refresh("ide")
        assert status.last_error is not None
        assert reason in status.last_error
        assert status.last_success == first.last_success
        assert service.loaded("ide") is good
        flaky.clear_faults()
        assert (await service.refresh("ide")).last_error is None


async def test_a_catalogue_never_loaded_is_unavailable(tmp_path: Path) -> None:
    service = catalogs(tmp_path, spec("http://127.0.0.1:1/nothing"))
    status = await service.refresh("ide")
    assert status.last_error is not None
    with pytest.raises(Unavailable, match="unavailable"):
        service.loaded("ide")


async def test_folder_catalogue(tmp_path: Path) -> None:
    folder = Path(__file__).parents[1] / "fixtures" / "catalog"
    service = catalogs(tmp_path, spec(str(folder)))
    assert (await service.refresh("ide")).last_error is None
    assert {c.name for c in service.loaded("ide").charts} == {"jupyter-lite", "rstudio-lite"}
    files = await service.chart_files("ide", "jupyter-lite", None)
    engine = SdkHelmEngine(HelmSettings())
    manifests = await engine.render(files.directory, {}, release="j", namespace="n")
    assert any("StatefulSet" in m for m in manifests.values())


async def test_concurrent_first_uses_of_a_chart_assemble_it_once(tmp_path: Path) -> None:
    folder = Path(__file__).parents[1] / "fixtures" / "catalog"
    service = catalogs(tmp_path, spec(str(folder)))
    assert (await service.refresh("ide")).last_error is None
    # Twenty launches of a chart nobody used yet: they once raced into the same folder.
    found = await asyncio.gather(
        *(service.chart_files("ide", "jupyter-lite", None) for _ in range(20))
    )
    assert len({f.directory for f in found}) == 1
    assert (found[0].directory / "Chart.yaml").is_file()


@pytest.mark.parametrize("auth", [False, True])
async def test_oci_registry(tmp_path: Path, auth: bool) -> None:
    credentials = {"username": "pusher", "password": "oci-pass-123"} if auth else {}
    with LocalOciRegistry(**credentials) as registry:
        for archive in package_charts(fixture_sources(), tmp_path / "packages"):
            push_chart(registry, archive)
        service = catalogs(
            tmp_path,
            spec(
                registry.url,
                plainHttp=True,
                ociCharts=["jupyter-lite", "rstudio-lite", "library-chart"],
                **credentials,
            ),
        )
        status = await service.refresh("ide")
        assert status.last_error is None, status.last_error
        loaded = service.loaded("ide")
        assert {c.name for c in loaded.charts} == {"jupyter-lite", "rstudio-lite"}
        jupyter = loaded.chart("jupyter-lite")
        assert jupyter is not None
        assert [v.version for v in jupyter.versions] == ["2.0.0", "1.1.0", "1.0.0"]
        files = await service.chart_files("ide", "jupyter-lite", "2.0.0")
        manifests = await SdkHelmEngine(HelmSettings()).render(
            files.directory, {}, release="j", namespace="n"
        )
        assert any("StatefulSet" in m for m in manifests.values())
