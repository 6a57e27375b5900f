"""Domain objects become Onyxia's answers field for field (names as the Onyxia web reads them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec, ChartVersion, Dependency, LoadedCatalog
from onyxia_py.onyxia_compat.mapping import (
    catalog_out,
    catalogs_for,
    chart_out,
    default_values,
    project_out,
    public_location,
    quota_out,
)
from onyxia_py.onyxia_compat.models import CatalogsOut, UserInfoOut
from onyxia_py.projects.models import Project
from onyxia_py.settings import CatalogSettings

CATALOG = Path(__file__).parents[2] / "fixtures" / "catalog"

VERSION = ChartVersion(
    name="jupyter-python",
    version="2.3.1",
    app_version="4.4",
    description="Jupyter",
    icon="https://example.org/jupyter.png",
    type="application",
    keywords=("python",),
    annotations={"category": "ide"},
    dependencies=(Dependency("library-chart", "1.5.0", "https://inseefrlab.github.io/x"),),
    urls=("https://example.org/jupyter-python-2.3.1.tgz",),
    digest="abc",
    created="2026-01-01T00:00:00Z",
)


def test_a_chart_carries_its_index_fields_and_values_as_yaml_text() -> None:
    values = {"service": {"image": {"version": "py3.12"}}, "global": {"suspend": False}}
    out = chart_out(VERSION, values).model_dump(by_alias=True, exclude_none=True)
    assert out["appVersion"] == "4.4"
    assert out["type"] == "application"
    assert out["dependencies"] == [
        {
            "name": "library-chart",
            "version": "1.5.0",
            "repository": "https://inseefrlab.github.io/x",
        }
    ]
    assert yaml.safe_load(out["defaultValues"]) == values
    assert "home" not in out  # empty in the index: left out, as Onyxia leaves it out


def test_unknown_default_values_are_empty_text() -> None:
    assert default_values(None) == ""
    assert chart_out(VERSION, None).default_values == ""


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://inseefrlab.github.io/helm-charts", "https://inseefrlab.github.io/helm-charts"),
        (
            "https://bot:s3cret@charts.example.org:8443/repo?x=1",
            "https://charts.example.org:8443/repo",
        ),
        ("oci://registry.example.org/charts", "oci://registry.example.org/charts"),
        ("/srv/catalogs/ide", ""),
        ("catalog/ide", ""),
    ],
)
def test_locations_never_show_credentials_or_server_paths(location: str, shown: str) -> None:
    assert public_location(location) == shown


def test_a_catalogue_has_onyxias_names_and_never_its_secrets() -> None:
    spec = CatalogSpec.model_validate(
        {
            "id": "ide",
            "name": {"en": "IDE", "fr": "EDI"},
            "location": "https://u:p@charts.example.org",
            "highlightedCharts": ["jupyter-python"],
            "multipleServicesMode": "maxNumber",
            "maxNumberOfVersions": 3,
            "username": "u",
            "password": "never-shown",
            "restrictions": [{"userAttribute": {"key": "groups", "matches": "ops"}}],
            "visible": {"user": False, "project": True},
        }
    )
    loaded_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    catalog = LoadedCatalog(spec, (), {}, loaded_at)
    out = catalog_out(catalog, {"jupyter-python": chart_out(VERSION, {})})
    wire = CatalogsOut(catalogs=[out]).model_dump(by_alias=True, exclude_none=True)["catalogs"][0]
    assert wire["name"] == {"en": "IDE", "fr": "EDI"}
    assert wire["highlightedCharts"] == ["jupyter-python"]
    assert wire["multipleServicesMode"] == "maxNumber"
    assert wire["maxNumberOfVersions"] == 3
    assert wire["visible"] == {"user": False, "project": True}
    assert wire["lastUpdateTime"] == int(loaded_at.timestamp() * 1000)
    assert wire["location"] == "https://charts.example.org"
    assert set(wire["catalog"]) == {"apiVersion", "generated", "latestPackages"}
    assert list(wire["catalog"]["latestPackages"]) == ["jupyter-python"]
    text = str(wire)
    assert "never-shown" not in text
    assert "restrictions" not in wire
    assert "username" not in wire
    assert "password" not in wire


def test_the_personal_project_is_the_one_without_group() -> None:
    projects = [
        Project(id="user-alice", namespace="user-alice", owner="alice", group=None),
        Project(id="projet-stats", namespace="projet-stats", owner="stats", group="stats"),
    ]
    info = UserInfoOut(
        idep="alice",
        email="alice@example.org",
        ip="10.0.0.1",
        groups=["stats"],
        roles=[],
        projects=[project_out(p, "alice", lambda p: None) for p in projects],
    )
    wire = info.model_dump(by_alias=True, exclude_none=True)
    personal, group = wire["projects"]
    # The web asserts exactly one project has no `group` (undefined, not null).
    assert "group" not in personal
    assert personal["vaultTopDir"] == "alice"
    assert group["group"] == "stats"
    assert group["vaultTopDir"] == "projet-stats"
    assert "nomComplet" not in wire  # unknown: left out (the web splits it when present)
    assert "bucket" not in personal


def test_projects_name_their_bucket_when_there_is_one() -> None:
    project = Project(id="projet-stats", namespace="projet-stats", owner="stats", group="stats")
    assert project_out(project, "alice", lambda p: f"b-{p.id}").bucket == "b-projet-stats"


def test_a_quota_is_its_hard_and_used_amounts() -> None:
    quota: dict[str, Any] = {
        "spec": {"hard": {"requests.cpu": "8"}},
        "status": {
            "hard": {"requests.cpu": "8", "count/pods": "50"},
            "used": {"requests.cpu": "1500m"},
        },
    }
    out = quota_out(quota)
    assert out.spec == {"requests.cpu": "8", "count/pods": "50"}
    assert out.usage == {"requests.cpu": "1500m", "count/pods": "0"}


def test_a_quota_not_counted_yet_has_its_spec_and_nothing_used() -> None:
    out = quota_out({"spec": {"hard": {"limits.memory": "64Gi"}}})
    assert out.spec == {"limits.memory": "64Gi"}
    assert out.usage == {"limits.memory": "0"}
    assert quota_out(None).model_dump() == {"spec": {}, "usage": {}}


async def test_catalogues_are_chosen_by_restrictions_not_by_project_kind(tmp_path: Path) -> None:
    def spec(catalog_id: str, **extra: Any) -> CatalogSpec:
        return CatalogSpec.model_validate(
            {"id": catalog_id, "name": catalog_id, "location": str(CATALOG), **extra}
        )

    specs = [
        spec("groups-only", visible={"user": False, "project": True}),
        spec("ops", restrictions=[{"userAttribute": {"key": "groups", "matches": "ops"}}]),
        spec("nowhere", visible={"user": False, "project": False}),
        spec("ide"),
    ]
    catalogs = Catalogs(CatalogSettings(paths=[], cache_dir=tmp_path), specs, base_dir=tmp_path)
    await catalogs.refresh_all()
    assert [c.spec.id for c in catalogs_for(catalogs, {})] == ["groups-only", "ide"]
    ops = [c.spec.id for c in catalogs_for(catalogs, {"groups": ["ops"]})]
    assert ops == ["groups-only", "ops", "ide"]
