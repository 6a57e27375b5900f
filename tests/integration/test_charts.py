"""Our service charts: lint, render with server-computed defaults, pass the API server's
validation, install and run on the local control plane, and refuse unsafe values."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.launch import LaunchContext, LaunchRequest, prepare_form, prepare_values
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir
from onyxia_py.errors import Invalid
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.kube import KubeClient
from onyxia_py.projects.models import Project
from onyxia_py.settings import (
    CatalogSettings,
    HelmSettings,
    KubernetesSettings,
    RegionSettings,
)

CHARTS = Path(__file__).parents[2] / "charts"
SERVICE_CHARTS = sorted(
    p.name
    for p in CHARTS.iterdir()
    if (p / "Chart.yaml").is_file()
    and yaml.safe_load((p / "Chart.yaml").read_text()).get("type", "application") != "library"
)
GPU_CHARTS = [c for c in SERVICE_CHARTS if "gpu" in c]

ALICE = Principal(
    user_id=1,
    identity=Identity("https://sso", "alice-sub", "alice", "alice@example.org", ("stats",), ()),
    is_admin=False,
    scopes=frozenset({Scope.READ, Scope.LAUNCH}),
    method=AuthMethod.SESSION,
)


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> LaunchContext:
    spec = CatalogSpec.model_validate(
        {"id": "ide", "name": "IDE", "location": str(CHARTS), "multipleServicesMode": "all"}
    )
    cache = tmp_path_factory.mktemp("charts-cache")
    catalogs = Catalogs(CatalogSettings(cache_dir=cache), [spec], base_dir=cache)
    status = asyncio.run(catalogs.refresh("ide"))
    assert status.last_error is None, status.last_error
    return LaunchContext(
        catalogs=catalogs,
        registry=SchemaRegistry(bundled_schema_dir()),
        region=RegionSettings(domain="lab.example.org", ingress_class="nginx"),
        settings=CatalogSettings(),
        project_secret=b"test-secret",
    )


def request(chart: str, namespace: str = "user-alice") -> LaunchRequest:
    return LaunchRequest(ALICE, Project(namespace, namespace, "alice", None), "ide", chart, None)


def test_every_chart_is_offered() -> None:
    expected = {"jupyter-python", "vscode-python", "rstudio", "mlflow", "label-studio"}
    assert expected <= set(SERVICE_CHARTS)
    assert {"jupyter-pytorch-gpu", "vscode-pytorch-gpu"} <= set(GPU_CHARTS)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
async def test_lint_and_render_with_computed_defaults(chart: str, launch: LaunchContext) -> None:
    files = await launch.catalogs.chart_files("ide", chart, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = helm_python.lint(str(files.directory), strict=True)
    # Severities: 1 info, 2 warning, 3 error; strict lint must find neither of the last two.
    assert report["total_charts_linted"] >= 1, report
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report
    _, values = await prepare_values(launch, request(chart), {})
    manifests = await SdkHelmEngine(HelmSettings()).render(
        files.directory, values, release=f"{chart}-1", namespace="user-alice"
    )
    kinds = set()
    for name, text in manifests.items():
        if not name.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                kinds.add(document["kind"])
    assert {"Service", "Ingress", "NetworkPolicy"} <= kinds
    assert kinds & {"StatefulSet", "Deployment"}
    assert any("lab.example.org" in m for m in manifests.values())
    assert (CHARTS / chart / "README.md").is_file()


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
async def test_the_api_server_accepts_every_manifest(
    chart: str, launch: LaunchContext, kube_settings: KubernetesSettings, namespace: str
) -> None:
    files = await launch.catalogs.chart_files("ide", chart, None)
    _, values = await prepare_values(launch, request(chart, namespace), {})
    engine = SdkHelmEngine(HelmSettings(), kubeconfig=kube_settings.kubeconfig)
    await engine.install(
        files.directory, release=f"{chart}-dry", namespace=namespace, values=values, dry_run=True
    )
    assert await engine.list(namespace) == []


async def running(kube: KubeClient, namespace: str, release: str) -> bool:
    pods = await kube.list("Pod", namespace, label_selector=f"app.kubernetes.io/instance={release}")
    return bool(pods) and all(p["status"].get("phase") == "Running" for p in pods)


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
async def test_installs_and_runs(
    chart: str,
    launch: LaunchContext,
    kube: KubeClient,
    kube_settings: KubernetesSettings,
    restricted_namespace: str,
) -> None:
    """Every chart runs in a namespace that enforces the `restricted` Pod Security Standard (a
    pod that broke it would be refused, and the wait would time out)."""
    namespace = restricted_namespace
    labels = (await kube.get("Namespace", namespace))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    files = await launch.catalogs.chart_files("ide", chart, None)
    _, values = await prepare_values(launch, request(chart, namespace), {})
    engine = SdkHelmEngine(HelmSettings(timeout_seconds=90), kubeconfig=kube_settings.kubeconfig)
    info = await engine.install(
        files.directory, release=chart, namespace=namespace, values=values, wait=True
    )
    assert info.status == "deployed"
    assert await running(kube, namespace, chart)
    assert info.notes.strip()
    await engine.uninstall(chart, namespace=namespace)


async def test_ides_find_mlflow_in_their_project(
    launch: LaunchContext, kube: KubeClient, kube_settings: KubernetesSettings, namespace: str
) -> None:
    engine = SdkHelmEngine(HelmSettings(timeout_seconds=90), kubeconfig=kube_settings.kubeconfig)
    for chart in ("mlflow", "jupyter-python"):
        files = await launch.catalogs.chart_files("ide", chart, None)
        _, values = await prepare_values(launch, request(chart, namespace), {})
        await engine.install(
            files.directory, release=chart, namespace=namespace, values=values, wait=True
        )
    workloads = await kube.list("StatefulSet", namespace) + await kube.list("Deployment", namespace)
    jupyter = next(w for w in workloads if w["metadata"]["name"].startswith("jupyter-python"))
    env: list[dict[str, Any]] = jupyter["spec"]["template"]["spec"]["containers"][0].get("env", [])
    tracking = {e["name"]: e.get("value") for e in env}.get("MLFLOW_TRACKING_URI")
    assert tracking is not None
    assert tracking.startswith("http://")
    assert namespace in tracking


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
async def test_defaults_validate_and_unsafe_values_are_refused(
    chart: str, launch: LaunchContext
) -> None:
    await prepare_values(launch, request(chart), {})
    unsafe: list[tuple[dict[str, Any], str]] = [
        ({"resources": {"limits": {"cpu": "64000m"}}}, "resources.limits.cpu"),
        ({"securityContext": {"privileged": True}}, "securityContext"),
        ({"hostNetwork": True}, "hostNetwork"),
    ]
    for overrides, field in unsafe:
        with pytest.raises(Invalid) as caught:
            await prepare_values(launch, request(chart), overrides)
        assert any(e.field.startswith(field) for e in caught.value.errors), caught.value.errors


@pytest.mark.parametrize("chart", GPU_CHARTS)
async def test_gpu_charts_bound_their_gpus(chart: str, launch: LaunchContext) -> None:
    form = await prepare_form(launch, request(chart))
    assert form.form.defaults["resources"]["limits"]["nvidia.com/gpu"]
    with pytest.raises(Invalid) as caught:
        await prepare_values(
            launch, request(chart), {"nodeSelector": {"nvidia.com/gpu.product": "Voodoo-3dfx"}}
        )
    assert any("nodeSelector" in e.field for e in caught.value.errors)
    with pytest.raises(Invalid):
        await prepare_values(
            launch, request(chart), {"resources": {"limits": {"nvidia.com/gpu": "64"}}}
        )


def test_chart_readmes_are_generated_from_the_schemas() -> None:
    from devtools.chart_readme import main

    assert main(["--check"]) == 0


def test_nothing_vendored_in_the_source_tree() -> None:
    assert not any((CHARTS / c / "charts").exists() for c in SERVICE_CHARTS)
