"""The catalogue API: listing, forms computed on the server, enforced values, administration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devtools.helmrepo import HelmRepoServer, fixture_repository
from onyxia_py.app import create_app
from onyxia_py.settings import (
    AuthSettings,
    CatalogSettings,
    DatabaseSettings,
    RegionSettings,
    Settings,
)

from ..support import wait_for_catalogs


@pytest.fixture(scope="module")
def repo() -> Iterator[HelmRepoServer]:
    with fixture_repository() as server:
        yield server


def definitions(url: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "ide",
            "name": {"en": "Interactive services", "fr": "Services interactifs"},
            "location": url,
            "multipleServicesMode": "all",
            "highlightedCharts": ["jupyter-lite"],
            "username": "",
            "password": "never-shown-secret",
        },
        {
            "id": "restricted",
            "name": "For admins of the ops group",
            "location": url,
            "restrictions": [{"userAttribute": {"key": "groups", "matches": "ops"}}],
        },
        {
            "id": "groups-only",
            "name": "Only in group projects",
            "location": url,
            "visible": {"user": False, "project": True},
        },
    ]


@pytest.fixture
def client(repo: HelmRepoServer, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"),
        catalogs=CatalogSettings(
            paths=[], definitions=definitions(repo.url), cache_dir=tmp_path / "cache"
        ),
        region=RegionSettings(domain="lab.example.org", ingress_class="nginx"),
        auth=AuthSettings(local_username="alice"),
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        wait_for_catalogs(test_client.get)
        test_client.get("/auth/login")
        token = test_client.get("/auth/session").json()["csrf_token"]
        test_client.headers["X-CSRF-Token"] = token
        yield test_client


def test_listing_applies_restrictions_and_visibility(client: TestClient) -> None:
    listed = client.get("/api/catalogs", params={"lang": "fr"}).json()
    assert [c["id"] for c in listed] == ["ide"]
    assert listed[0]["name"] == "Services interactifs"
    assert "password" not in str(listed)
    assert "never-shown-secret" not in client.get("/api/catalogs/ide").text
    assert client.get("/api/catalogs/restricted").status_code == 404
    assert client.get("/api/catalogs/groups-only").status_code == 404


def test_catalogue_charts_highlighted_first(client: TestClient) -> None:
    catalog = client.get("/api/catalogs/ide").json()
    assert [c["name"] for c in catalog["charts"]] == ["jupyter-lite", "rstudio-lite"]
    jupyter = catalog["charts"][0]
    assert jupyter["highlighted"] is True
    assert [v["version"] for v in jupyter["versions"]] == ["2.0.0", "1.1.0", "1.0.0"]
    chart = client.get("/api/catalogs/ide/charts/rstudio-lite").json()
    assert chart["latest_version"]
    assert client.get("/api/catalogs/ide/charts/nope").status_code == 404


def test_launch_form_is_computed_on_the_server(client: TestClient) -> None:
    form = client.get("/api/catalogs/ide/charts/jupyter-lite/form").json()
    assert form["version"] == "2.0.0"
    assert form["project"] == "user-alice"
    assert form["raw_values"] is False
    hostname = form["defaults"]["ingress"]["hostname"]
    assert hostname.startswith("user-alice-")
    assert hostname.endswith("-0.lab.example.org")
    assert form["defaults"]["ingress"]["ingressClassName"] == "nginx"
    # The registry schema replaced the chart's resources (overwriteSchemaWith); the chart's own
    # bound (40000m) beats the bundled one (8000m) when the operator set none.
    cpu = form["schema"]["properties"]["resources"]["properties"]["requests"]["properties"]["cpu"]
    assert cpu["x-onyxia"]["useRegionSliderConfig"] == "cpu"
    assert cpu["sliderMax"] == 40000
    raw = client.get("/api/catalogs/ide/charts/rstudio-lite/form").json()
    assert raw["raw_values"] is True
    assert raw["schema"] is None


def test_valid_values_are_computed_exactly(client: TestClient) -> None:
    form = client.get("/api/catalogs/ide/charts/jupyter-lite/form").json()
    answer = client.post(
        "/api/catalogs/ide/charts/jupyter-lite/validate",
        json={
            "version": "2.0.0",
            "values": {"resources": {"requests": {"cpu": "2000m"}}, "security": {"password": "x1"}},
        },
    )
    assert answer.status_code == 200, answer.text
    values = answer.json()["values"]
    assert values["resources"]["requests"]["cpu"] == "2000m"
    assert values["resources"]["limits"] == form["defaults"]["resources"]["limits"]
    assert values["security"]["password"] == "x1"
    assert values["service"] == form["defaults"]["service"]
    assert values["ingress"]["hostname"].endswith("-0.lab.example.org")


def test_forbidden_overrides_are_refused_with_their_paths(client: TestClient) -> None:
    answer = client.post(
        "/api/catalogs/ide/charts/jupyter-lite/validate",
        json={
            "values": {
                "ingress": {"hostname": "evil.example.com"},
                "resources": {"limits": {"cpu": "64000m"}},
                "service": {"image": {"pullPolicy": "Sometimes"}},
                "hostNetwork": True,
            }
        },
    )
    assert answer.status_code == 422
    problem = answer.json()
    fields = {e["field"]: e["reason"] for e in problem["errors"]}
    assert "ingress.hostname" in fields
    assert "resources.limits.cpu" in fields
    assert "service.image.pullPolicy" in fields
    assert "hostNetwork" in fields


def test_csrf_applies_to_validate(client: TestClient) -> None:
    del client.headers["X-CSRF-Token"]
    answer = client.post("/api/catalogs/ide/charts/jupyter-lite/validate", json={"values": {}})
    assert answer.status_code == 403


def test_admin_status_refresh_and_database_catalogues(
    client: TestClient, repo: HelmRepoServer
) -> None:
    statuses = {c["id"]: c for c in client.get("/api/admin/catalogs").json()}
    assert set(statuses) == {"ide", "restricted", "groups-only"}
    ide = statuses["ide"]
    assert ide["has_password"] is True
    assert "password" not in ide["definition"]
    assert ide["status"]["chart_count"] == 2
    assert ide["origin"] == "file"
    assert client.post("/api/admin/catalogs/ide/refresh").json()["last_error"] is None

    made = client.post(
        "/api/admin/catalogs",
        json={"id": "extra", "name": "Extra", "location": repo.url, "password": "pw-123456"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["origin"] == "database"
    assert "pw-123456" not in made.text
    assert "extra" in [c["id"] for c in client.get("/api/catalogs").json()]
    changed = client.put("/api/admin/catalogs/extra", json={"name": "Extra!", "location": repo.url})
    assert changed.status_code == 200
    assert changed.json()["has_password"] is True  # kept: write-only fields stay
    assert (
        client.post(
            "/api/admin/catalogs", json={"id": "extra", "name": "x", "location": repo.url}
        ).status_code
        == 409
    )
    bad = client.post("/api/admin/catalogs", json={"id": "Bad Id", "location": 3})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"id", "name"}
    assert client.delete("/api/admin/catalogs/ide").status_code == 409
    assert client.delete("/api/admin/catalogs/extra").status_code == 204
    assert client.get("/api/catalogs/extra").status_code == 404


def test_database_catalogues_survive_a_restart(repo: HelmRepoServer, tmp_path: Path) -> None:
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"),
        catalogs=CatalogSettings(paths=[], cache_dir=tmp_path / "cache"),
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as first:
        first.get("/auth/login")
        first.headers["X-CSRF-Token"] = first.get("/auth/session").json()["csrf_token"]
        made = first.post(
            "/api/admin/catalogs",
            json={"id": "kept", "name": "Kept", "location": repo.url, "password": "pw-7654321"},
        )
        assert made.status_code == 201
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as second:
        wait_for_catalogs(second.get)
        second.get("/auth/login")
        kept = {c["id"]: c for c in second.get("/api/admin/catalogs").json()}["kept"]
        assert kept["origin"] == "database"
        assert kept["has_password"] is True
        assert kept["status"]["chart_count"] == 2
