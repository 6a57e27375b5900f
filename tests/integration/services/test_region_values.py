"""The region values of the onyxia context, set by the operator, reach a chart's objects
(tests/fixtures/shapes/region-values), launched through the API on the local control plane with
real Helm; and the operator's slider bounds (region, role) shape the launch form and the launch,
within the chart's own bounds."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.localoidc import OidcUser
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import (
    CatalogSettings,
    KubernetesSettings,
    ProjectSettings,
    RegionSettings,
    SliderBounds,
)

from ...support import wait_for_catalogs
from ..oidc_stack import Stack, bearer, stack
from .helpers import leftovers, phases
from .test_chart_shapes import SHAPES, launch, validate

CHART = "region-values"
CA_BUNDLE = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
GATEWAY_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}
MONITORING_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app": "prometheus"}},
}
CONFIGURED = RegionSettings(
    domain="apps.region.test",
    ingress_class="internal-nginx",
    route=True,
    istio_enabled=True,
    istio_gateways=["istio-system/public", "istio-system/private"],
    network_policy_from=[GATEWAY_PEER, MONITORING_PEER],
    oauth2={"clientId": "charts-client", "issuerURI": "https://sso.region.test/realms/lab"},
    custom_values={"site": "paris", "budget": {"owner": "dsi"}},
    kubernetes_role="edit",
    proxy={
        "enabled": True,
        "httpProxyUrl": "http://proxy.region.test:3128",
        "httpsProxyUrl": "http://proxy.region.test:3128",
        "noProxy": ".svc,.cluster.local",
    },
    package_repositories={
        "pypiProxyUrl": "https://pypi.region.test/simple",
        "condaProxyUrl": "https://conda.region.test",
    },
    certificate_authority=CA_BUNDLE.decode(),
    certificate_authority_path="/usr/local/share/ca-certificates/region.crt",
    # CPU up to 16 cores for everyone: beyond the chart's 6000m, so the chart's bound holds.
    sliders={"cpu": SliderBounds(max=16, unit=""), "memory": SliderBounds(max=4, unit="Gi")},
    # Students get at most 2Gi of memory and 1 core.
    role_sliders={
        "student": {"memory": SliderBounds(max=2048, unit="Mi"), "cpu": SliderBounds(max=1000)}
    },
)
USERS = [
    OidcUser("dora", "dora-password"),
    OidcUser("sam", "sam-password", roles=["student"]),
]


@contextlib.contextmanager
def region_stack(
    tmp: Path, kube_settings: KubernetesSettings, kube: KubeClient, region: RegionSettings | None
) -> Iterator[Stack]:
    """The app over the shapes catalogue with these region settings (None: the defaults)."""
    tag = secrets.token_hex(3)
    overrides: dict[str, Any] = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"r{tag}-", group_namespace_prefix=f"rg{tag}-"
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "shapes", "name": "Shapes", "location": str(SHAPES)}],
            cache_dir=tmp / "cache",
        ),
    }
    if region is not None:
        overrides["region"] = region
    try:
        with stack(tmp, settings=overrides, users=USERS) as running:
            wait_for_catalogs(httpx.get, running.url)
            yield running
    finally:
        for user in USERS:
            with contextlib.suppress(NotFound):
                kube.request_sync("DELETE", f"/api/v1/namespaces/r{tag}-{user.username}", body={})


@pytest.fixture(scope="module")
def configured(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("region-configured")
    with region_stack(tmp, kube_settings, kube, CONFIGURED) as running:
        yield running


@pytest.fixture(scope="module")
def defaults(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("region-defaults")
    with region_stack(tmp, kube_settings, kube, None) as running:
        yield running


def user(s: Stack, name: str) -> tuple[dict[str, str], str]:
    """The bearer headers of `name` and their personal project."""
    headers = bearer(s.tokens(name, f"{name}-password")["access_token"])
    return headers, s.settings.projects.user_namespace_prefix + name


def launched(s: Stack, headers: dict[str, str], project: str) -> str:
    """Launch the chart with its defaults, follow it to running; the release."""
    answer = launch(s, headers, project, CHART)
    assert answer.status_code == 202, answer.text
    last = phases(s, headers, answer.json()["events_url"])[-1]
    assert last["phase"] == "running", last
    release: str = answer.json()["release"]
    return release


def read(kube: KubeClient, path: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.request_sync("GET", path)
    return found


def remove(s: Stack, headers: dict[str, str], project: str, release: str, kube: KubeClient) -> None:
    url = f"{s.url}/api/projects/{project}/services/{release}"
    assert httpx.delete(url, headers=headers, timeout=60).status_code == 204
    assert leftovers(kube, project, release) == []


def test_configured_region_values_reach_the_installed_objects(
    configured: Stack, kube: KubeClient
) -> None:
    headers, project = user(configured, "dora")
    assert validate(configured, headers, CHART).status_code == 200
    release = launched(configured, headers, project)
    ns = f"/api/v1/namespaces/{project}"
    data = read(kube, f"{ns}/configmaps/{release}-region")["data"]
    assert data["hostname"].startswith(f"{project}-")
    assert data["hostname"].endswith(".apps.region.test")
    assert data["ingressClassName"] == "internal-nginx"
    assert data["route"] == "true"
    assert data["istioEnabled"] == "true"
    assert data["istioGateways"] == "istio-system/public,istio-system/private"
    assert data["oauth2ClientId"] == "charts-client"
    assert json.loads(data["oauth2.json"]) == CONFIGURED.oauth2
    assert json.loads(data["customValues.json"]) == CONFIGURED.custom_values
    assert data["http_proxy"] == data["https_proxy"] == "http://proxy.region.test:3128"
    assert data["no_proxy"] == ".svc,.cluster.local"
    assert data["PIP_INDEX_URL"] == "https://pypi.region.test/simple"
    assert data["CONDA_CHANNEL"] == "https://conda.region.test"
    assert data["caBundlePath"] == "/usr/local/share/ca-certificates/region.crt"
    assert data["kubernetesRole"] == "edit"

    ingress = read(kube, f"/apis/networking.k8s.io/v1/namespaces/{project}/ingresses/{release}")
    assert ingress["spec"]["ingressClassName"] == "internal-nginx"
    assert ingress["spec"]["rules"][0]["host"] == data["hostname"]
    policies = f"/apis/networking.k8s.io/v1/namespaces/{project}/networkpolicies"
    own = read(kube, f"{policies}/{release}")
    assert own["spec"]["ingress"] == [{"from": [{"podSelector": {}}]}]
    peers = read(kube, f"{policies}/{release}-peers")
    assert peers["spec"]["ingress"] == [{"from": [GATEWAY_PEER, MONITORING_PEER]}]
    binding = read(
        kube, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{project}/rolebindings/{release}"
    )
    assert binding["roleRef"]["name"] == "edit"
    secret = read(kube, f"{ns}/secrets/{release}-ca")
    assert base64.b64decode(secret["data"]["ca.crt"]) == base64.b64decode(CA_BUNDLE)
    remove(configured, headers, project, release, kube)


def test_the_default_region_values_render_and_install(defaults: Stack, kube: KubeClient) -> None:
    headers, project = user(defaults, "dora")
    assert validate(defaults, headers, CHART).status_code == 200
    release = launched(defaults, headers, project)
    ns = f"/api/v1/namespaces/{project}"
    data = read(kube, f"{ns}/configmaps/{release}-region")["data"]
    assert data["hostname"].endswith(".lab.127.0.0.1.nip.io")
    assert data["ingressClassName"] == ""
    assert (data["route"], data["istioEnabled"], data["istioGateways"]) == ("false", "false", "")
    assert data["oauth2ClientId"] == ""
    assert (json.loads(data["oauth2.json"]), json.loads(data["customValues.json"])) == ({}, {})
    # No injection configured: none given.
    for absent in ("http_proxy", "PIP_INDEX_URL", "caBundlePath"):
        assert absent not in data
    assert data["kubernetesRole"] == "view"
    ingress = read(kube, f"/apis/networking.k8s.io/v1/namespaces/{project}/ingresses/{release}")
    assert "ingressClassName" not in ingress["spec"]
    policies = f"/apis/networking.k8s.io/v1/namespaces/{project}/networkpolicies"
    peers = read(kube, f"{policies}/{release}-peers")
    ingress_nginx = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    }
    assert peers["spec"]["ingress"] == [{"from": [ingress_nginx]}]
    binding = read(
        kube, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{project}/rolebindings/{release}"
    )
    assert binding["roleRef"]["name"] == "view"
    with pytest.raises(NotFound):
        read(kube, f"{ns}/secrets/{release}-ca")
    remove(defaults, headers, project, release, kube)


def form_limits(s: Stack, headers: dict[str, str], project: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{s.url}/api/catalogs/shapes/charts/{CHART}/form",
        params={"project": project},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    limits: dict[str, Any] = answer.json()["schema"]["properties"]["resources"]["properties"][
        "limits"
    ]["properties"]
    return limits


def refused(s: Stack, headers: dict[str, str], project: str, limits: dict[str, str]) -> Any:
    answer = httpx.post(
        f"{s.url}/api/projects/{project}/services",
        json={"catalog": "shapes", "chart": CHART, "values": {"resources": {"limits": limits}}},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()["errors"]


def test_slider_bounds_come_from_the_region_and_role_within_the_chart(
    configured: Stack, defaults: Stack, kube: KubeClient
) -> None:
    # No setting: the chart's own bounds (6000m, 16384Mi = 16Gi), not the bundled 8000m/32Gi.
    headers, project = user(defaults, "dora")
    limits = form_limits(defaults, headers, project)
    assert (limits["cpu"]["sliderMax"], limits["memory"]["sliderMax"]) == (6000, 16)

    # The region: 16 cores (beyond the chart: its 6000m holds) and 4Gi.
    headers, project = user(configured, "dora")
    limits = form_limits(configured, headers, project)
    assert (limits["cpu"]["sliderMax"], limits["memory"]["sliderMax"]) == (6000, 4)
    errors = refused(configured, headers, project, {"cpu": "6500m", "memory": "5Gi"})
    assert {"field": "resources.limits.cpu", "reason": "must be at most 6000m"} in errors
    assert {"field": "resources.limits.memory", "reason": "must be at most 4Gi"} in errors

    # A student: the role's 1000m and 2048Mi (= 2Gi), over the region's.
    headers, project = user(configured, "sam")
    limits = form_limits(configured, headers, project)
    assert (limits["cpu"]["sliderMax"], limits["memory"]["sliderMax"]) == (1000, 2)
    errors = refused(configured, headers, project, {"memory": "3Gi"})
    assert errors == [{"field": "resources.limits.memory", "reason": "must be at most 2Gi"}]
    # Within the role's bounds the launch goes ahead (the default 4000m CPU limit was brought
    # down to the role's 1000m).
    answer = httpx.post(
        f"{configured.url}/api/projects/{project}/services",
        json={
            "catalog": "shapes",
            "chart": CHART,
            "values": {"resources": {"limits": {"memory": "2Gi"}}},
        },
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    release = answer.json()["release"]
    assert phases(configured, headers, answer.json()["events_url"])[-1]["phase"] == "running"
    data = read(kube, f"/api/v1/namespaces/{project}/configmaps/{release}-region")["data"]
    assert (data["cpuLimit"], data["memoryLimit"]) == ("1000m", "2Gi")
    remove(configured, headers, project, release, kube)
