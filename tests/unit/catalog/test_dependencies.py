"""How a chart's dependencies are found: what the package carries under `charts/` first, then
the catalogue's own repository, then the repository the dependency names (a fake behind the
`OtherRepositories` port here; real servers in tests/integration/test_chart_dependencies.py).
Charts are real folders in a folder catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import Forbidden, Invalid, OnyxiaError, Unavailable
from onyxia_py.helm.sources import OtherRepositories, SourceConfig
from onyxia_py.settings import CatalogSettings

ELSEWHERE = "https://charts.example.org/extras"


def write_chart(folder: Path, name: str, version: str, **metadata: Any) -> Path:
    chart = folder / name
    (chart / "templates").mkdir(parents=True, exist_ok=True)
    document = {"apiVersion": "v2", "name": name, "version": version, **metadata}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(document))
    return chart


def needing(*dependencies: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "dependencies": [
            {"name": n, "version": v, "repository": r, "alias": f"{n}-{i}"}
            for i, (n, v, r) in enumerate(dependencies)
        ]
    }


class FakeRepositories:
    """Repositories elsewhere: `charts` by URL, each a list of chart folders; or an error."""

    def __init__(self, charts: dict[str, list[Path]], error: OnyxiaError | None = None) -> None:
        self.charts, self.error = charts, error
        self.asked: list[tuple[str, str]] = []

    async def index(self, repository: str) -> dict[str, Any]:
        self.asked.append((repository, "index.yaml"))
        if self.error is not None:
            raise self.error
        entries: dict[str, list[dict[str, Any]]] = {}
        for chart in self.charts.get(repository, []):
            metadata = yaml.safe_load((chart / "Chart.yaml").read_text())
            entries.setdefault(metadata["name"], []).append({**metadata, "urls": [str(chart)]})
        return {"apiVersion": "v1", "entries": entries}

    async def package(
        self, repository: str, name: str, version: str, urls: tuple[str, ...], digest: str
    ) -> Path:
        self.asked.append((repository, urls[0]))
        return Path(urls[0])

    async def close(self) -> None:
        return None


def catalogs(tmp_path: Path, fake: FakeRepositories) -> Catalogs:
    spec = CatalogSpec(id="c", name="C", location=str(tmp_path / "catalogue"))

    def repositories(config: SourceConfig) -> OtherRepositories:
        return fake

    settings = CatalogSettings(paths=[], cache_dir=tmp_path / "cache")
    return Catalogs(settings, [spec], repositories_factory=repositories, base_dir=tmp_path)


def vendored_names(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / "charts").iterdir())


async def test_a_dependency_the_chart_carries_is_used_as_it_is(tmp_path: Path) -> None:
    app = write_chart(tmp_path / "catalogue", "app", "1.0.0", **needing(("lib", "^1", ELSEWHERE)))
    write_chart(app / "charts", "lib", "0.1.0")  # another version than asked: Helm takes it
    fake = FakeRepositories({})
    service = catalogs(tmp_path, fake)
    assert (await service.refresh("c")).last_error is None
    files = await service.chart_files("c", "app", None)
    assert vendored_names(files.directory) == ["lib"]
    assert fake.asked == []


async def test_the_catalogue_repository_comes_before_the_one_named(tmp_path: Path) -> None:
    # Onyxia's charts name the public repository their catalogue may be a mirror of.
    write_chart(tmp_path / "catalogue", "app", "1.0.0", **needing(("lib", "1.0.0", ELSEWHERE)))
    write_chart(tmp_path / "catalogue", "lib", "1.0.0", type="library")
    fake = FakeRepositories({})
    service = catalogs(tmp_path, fake)
    assert (await service.refresh("c")).last_error is None
    assert [c.name for c in service.loaded("c").charts] == ["app"]  # a library is not listed
    files = await service.chart_files("c", "app", None)
    assert vendored_names(files.directory) == ["lib"]
    assert fake.asked == []


async def test_a_missing_dependency_comes_from_the_repository_it_names_once(
    tmp_path: Path,
) -> None:
    twice = needing(("sidecar", "~2.1", ELSEWHERE), ("sidecar", "~2.1", ELSEWHERE))
    write_chart(tmp_path / "catalogue", "app", "1.0.0", **twice)
    old = write_chart(tmp_path / "elsewhere" / "a", "sidecar", "2.0.0")
    new = write_chart(tmp_path / "elsewhere" / "b", "sidecar", "2.1.3")
    newer = write_chart(tmp_path / "elsewhere" / "c", "sidecar", "3.0.0")
    fake = FakeRepositories({ELSEWHERE: [old, new, newer]})
    service = catalogs(tmp_path, fake)
    assert (await service.refresh("c")).last_error is None
    files = await service.chart_files("c", "app", None)
    assert vendored_names(files.directory) == ["sidecar"]
    chosen = yaml.safe_load((files.directory / "charts/sidecar/Chart.yaml").read_text())
    assert chosen["version"] == "2.1.3"  # the newest meeting ~2.1
    assert fake.asked == [(ELSEWHERE, "index.yaml"), (ELSEWHERE, str(new))]
    # Assembled once: asked again, nothing is fetched.
    await service.chart_files("c", "app", None)
    assert len(fake.asked) == 2


@pytest.mark.parametrize(
    ("repository", "why"),
    [
        ("", "it names no repository to fetch it from"),
        ("@stable", "'@stable' is not a Helm repository URL to fetch it from"),
        (
            "oci://reader:pw@registry.example.org/charts",
            "dependencies in OCI registries (oci://registry.example.org/charts) are not fetched",
        ),
    ],
)
async def test_a_dependency_with_nowhere_to_come_from(
    tmp_path: Path, repository: str, why: str
) -> None:
    write_chart(tmp_path / "catalogue", "app", "1.0.0", **needing(("lib", "^1", repository)))
    service = catalogs(tmp_path, FakeRepositories({}))
    assert (await service.refresh("c")).last_error is None
    with pytest.raises(Invalid) as refused:
        await service.chart_files("c", "app", None)
    assert refused.value.detail == (
        "app 1.0.0 needs lib ^1, which neither its package (charts/) nor its catalogue's "
        f"repository has, and {why}"
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (Forbidden("10.0.0.1 is not a public address"), Invalid),
        (Unavailable("not received within 30s"), Unavailable),
    ],
)
async def test_a_repository_that_cannot_be_reached(
    tmp_path: Path, error: OnyxiaError, kind: type[OnyxiaError]
) -> None:
    write_chart(tmp_path / "catalogue", "app", "1.0.0", **needing(("lib", "^1", ELSEWHERE)))
    service = catalogs(tmp_path, FakeRepositories({}, error))
    assert (await service.refresh("c")).last_error is None
    with pytest.raises(kind) as failed:
        await service.chart_files("c", "app", None)
    assert type(failed.value) is kind
    assert failed.value.detail == f"app 1.0.0 needs lib ^1: {error.detail}"
    assert not any((tmp_path / "cache").rglob("app-1.0.0"))  # nothing half assembled
