"""The public routes of Onyxia's API on an app whose catalogues have not loaded (no server is
reached: no lifespan, so nothing loads and no database is opened)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from onyxia_py.api.problems import PROBLEM_JSON, Problem
from onyxia_py.app import create_app
from onyxia_py.onyxia_compat.models import IpOut
from onyxia_py.settings import CatalogSettings, DatabaseSettings, KubernetesSettings, Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    tmp = tmp_path_factory.mktemp("compat")
    schemas = tmp / "schemas"
    (schemas / "roles" / "gpu-users" / "ide").mkdir(parents=True)
    (schemas / "roles" / "gpu-users" / "ide" / "resources.json").write_text(
        json.dumps({"type": "object", "title": "GPU users' resources"})
    )
    settings = Settings(
        kubernetes=KubernetesSettings(kubeconfig=tmp / "none"),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"),
        catalogs=CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(tmp / "nowhere")}],
            schemas_dir=schemas,
        ),
    )
    return TestClient(create_app(settings))


def test_the_healthcheck_fails_until_every_catalogue_has_loaded(client: TestClient) -> None:
    answer = client.get("/api/public/healthcheck")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM_JSON
    problem = Problem.model_validate(answer.json())
    assert problem.type == "urn:onyxia-py:problem:not-ready"
    assert "ide" in problem.detail


def test_no_catalogue_is_listed_before_it_loads(client: TestClient) -> None:
    assert client.get("/api/public/catalogs").json() == {"catalogs": []}


def test_the_ip_is_the_clients(client: TestClient) -> None:
    assert IpOut.model_validate(client.get("/api/public/ip").json()).ip == "testclient"


def test_schemas_are_resolved_for_the_role_asked_for(client: TestClient) -> None:
    default = client.get("/api/public/schemas/ide/resources.json").json()
    gpu = client.get("/api/public/schemas/ide/resources.json", params={"role": "gpu-users"})
    assert gpu.json() == {"type": "object", "title": "GPU users' resources"}
    assert default != gpu.json()
    listed = client.get("/api/public/schemas", params={"role": "gpu-users"}).json()
    assert listed["ide/resources.json"] == gpu.json()
    assert client.get("/api/public/schemas").json()["ide/resources.json"] == default


@pytest.mark.parametrize("name", ["no-such.json", "..%2Fsettings.py", "%2Fetc%2Fpasswd"])
def test_unknown_or_unsafe_schema_names_are_not_found(client: TestClient, name: str) -> None:
    answer = client.get(f"/api/public/schemas/{name}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM_JSON
