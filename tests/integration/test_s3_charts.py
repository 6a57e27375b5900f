"""Our charts with S3 credentials from the onyxia context: with the platform's Secret named
(`s3.secretName`) they render no S3 Secret and read that one; without it they render their own,
with the same keys and files (Onyxia's way)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.catalog.context import ContextS3
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.launch import LaunchContext, LaunchRequest, prepare_values
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.projects.models import Project
from onyxia_py.settings import CatalogSettings, HelmSettings, RegionSettings

CHARTS = Path(__file__).parents[2] / "charts"
WITH_S3 = sorted(
    p.parent.name
    for p in CHARTS.glob("*/values.schema.json")
    if "s3" in json.loads(p.read_text()).get("properties", {})
)
ALICE = Principal(
    user_id=1,
    identity=Identity("https://sso", "alice-sub", "alice", None, (), ()),
    is_admin=False,
    scopes=frozenset({Scope.READ, Scope.LAUNCH}),
    method=AuthMethod.SESSION,
)
S3 = ContextS3(
    access_key_id="ASIAEXAMPLE",
    secret_access_key="secret",
    session_token="token",
    region="eu-west-3",
    endpoint_host="s3.example.org",
    bucket="user-alice",
    working_directory="user-alice/",
)


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> LaunchContext:
    spec = CatalogSpec.model_validate(
        {"id": "ide", "name": "IDE", "location": str(CHARTS), "multipleServicesMode": "all"}
    )
    cache = tmp_path_factory.mktemp("s3-charts")
    catalogs = Catalogs(CatalogSettings(cache_dir=cache), [spec], base_dir=cache)
    assert asyncio.run(catalogs.refresh("ide")).last_error is None
    return LaunchContext(
        catalogs=catalogs,
        registry=SchemaRegistry(bundled_schema_dir()),
        region=RegionSettings(domain="lab.example.org"),
        settings=CatalogSettings(),
        project_secret=b"test",
    )


async def render(launch: LaunchContext, chart: str, s3: ContextS3) -> list[dict[str, Any]]:
    project = Project("user-alice", "user-alice", "alice", None)
    request = LaunchRequest(ALICE, project, "ide", chart, None, s3)
    _, values = await prepare_values(launch, request, {})
    files = await launch.catalogs.chart_files("ide", chart, None)
    manifests = await SdkHelmEngine(HelmSettings()).render(
        files.directory, values, release=f"{chart}-1", namespace="user-alice"
    )
    return [
        doc
        for name, text in manifests.items()
        if name.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def pod_spec(documents: list[dict[str, Any]]) -> dict[str, Any]:
    workload = next(d for d in documents if d["kind"] in ("StatefulSet", "Deployment"))
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_every_s3_chart_is_checked() -> None:
    assert {"jupyter-python", "vscode-python", "rstudio", "mlflow", "label-studio"} <= set(WITH_S3)


@pytest.mark.parametrize("chart", WITH_S3)
async def test_charts_read_the_platform_secret_when_named(
    chart: str, launch: LaunchContext
) -> None:
    documents = await render(launch, chart, replace(S3, secret_name="onyxia-s3-x-1"))
    secrets = [d["metadata"]["name"] for d in documents if d["kind"] == "Secret"]
    assert not any(name.endswith("-s3") for name in secrets), secrets
    spec = pod_spec(documents)
    volume = next(v for v in spec["volumes"] if v["name"] == "s3-credentials")
    assert volume["secret"]["secretName"] == "onyxia-s3-x-1"
    assert {i["key"] for i in volume["secret"]["items"]} == {
        "credentials",
        "credentials.json",
        "config",
    }
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "onyxia-s3-x-1"
    assert env["AWS_CONFIG_FILE"]["value"] == "/var/run/secrets/onyxia/s3/config"
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert "subPath" not in mounts["s3-credentials"]


@pytest.mark.parametrize("chart", WITH_S3)
async def test_charts_render_their_own_secret_otherwise(chart: str, launch: LaunchContext) -> None:
    documents = await render(launch, chart, S3)
    secret = next(
        d for d in documents if d["kind"] == "Secret" and d["metadata"]["name"].endswith("-s3")
    )
    data = secret["stringData"]
    assert data["AWS_SESSION_TOKEN"] == "token"
    assert data["AWS_S3_ENDPOINT"] == "s3.example.org"
    assert json.loads(data["credentials.json"])["SessionToken"] == "token"
    assert "credential_process = cat /var/run/secrets/onyxia/s3/credentials.json" in data["config"]
    volume = next(v for v in pod_spec(documents)["volumes"] if v["name"] == "s3-credentials")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    without = await render(launch, chart, replace(S3, access_key_id=None))
    assert not any(d["kind"] == "Secret" and d["metadata"]["name"].endswith("-s3") for d in without)
