"""Chart dependencies end to end (issue #16): charts from a real HTTP Helm repository launched
through the API on the local control plane with real Helm. A package carrying its library and
sub-chart launches with neither in any repository; a sub-chart from a second repository is
fetched there; each refusal names the chart, the dependency and why, before anything is made."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.helmrepo import HelmRepoServer
from devtools.localoidc import ALICE_PASSWORD
from onyxia_py.kube import KubeClient
from onyxia_py.settings import KubernetesSettings

from ..dependency_charts import REFUSED, publish, serve_sidecar
from ..oidc_stack import Stack, bearer
from .helpers import catalogue_stack, leftovers, phases
from .test_chart_shapes import released


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelmRepoServer]:
    with HelmRepoServer(tmp_path_factory.mktemp("second")) as server:
        serve_sidecar(server)
        yield server


@pytest.fixture(scope="module")
def extras(second: HelmRepoServer) -> str:
    return f"{second.url}/extras"


@pytest.fixture(scope="module")
def deps(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    extras: str,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deps")
    (tmp / "first").mkdir()
    with HelmRepoServer(tmp / "first") as first:
        charts = ["bundled", "fetched", "stray", "orphan"]
        location = publish(first, charts, extras=extras, work=tmp)
        definitions: list[dict[str, Any]] = [
            # The second repository is on 127.0.0.1: this catalogue allows it...
            {
                "id": "deps",
                "name": "Deps",
                "location": location,
                "allowedNetworks": ["127.0.0.1/32"],
            },
            # ...this one, the same repository, keeps to public addresses.
            {"id": "strict", "name": "Strict", "location": location},
        ]
        with catalogue_stack(tmp, kube_settings, kube, definitions) as running:
            yield running


@pytest.fixture(scope="module")
def alice(deps: Stack) -> dict[str, str]:
    return bearer(deps.tokens("alice", ALICE_PASSWORD)["access_token"])


@pytest.fixture(scope="module")
def project(deps: Stack) -> str:
    return deps.settings.projects.user_namespace_prefix + "alice"


def launch(
    s: Stack, headers: dict[str, str], project: str, catalog: str, chart: str
) -> httpx.Response:
    return httpx.post(
        f"{s.url}/api/projects/{project}/services",
        json={"catalog": catalog, "chart": chart, "values": {}},
        headers=headers,
        timeout=30,
    )


def running_then_deleted(
    s: Stack, headers: dict[str, str], project: str, kube: KubeClient, chart: str
) -> dict[str, dict[str, str]]:
    """Launch `chart` from `deps`, see it run, delete it; its ConfigMaps' data and labels by
    name (without the release's prefix)."""
    accepted = launch(s, headers, project, "deps", chart)
    assert accepted.status_code == 202, accepted.text
    release = accepted.json()["release"]
    last = phases(s, headers, accepted.json()["events_url"])[-1]
    assert last["phase"] == "running", last
    found = kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{project}/configmaps",
        query={"labelSelector": f"app.kubernetes.io/instance={release}"},
    )["items"]
    made = {
        c["metadata"]["name"].removeprefix(release): {
            **c.get("data", {}),
            **{f"label:{k}": v for k, v in c["metadata"].get("labels", {}).items()},
        }
        for c in found
    }
    gone = httpx.delete(f"{s.url}/api/projects/{project}/services/{release}", headers=headers)
    assert gone.status_code == 204
    assert leftovers(kube, project, release) == []
    return made


def test_a_package_carrying_its_library_and_sub_chart_launches(
    deps: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    # Neither deps-library nor sidecar is in the catalogue's repository, and the repositories
    # they name (charts.example.invalid) do not exist: the package's charts/ is all it needs.
    made = running_then_deleted(deps, alice, project, kube, "bundled")
    assert made["-settings"]["setting"] == "bundled"
    assert made["-settings"]["label:app.kubernetes.io/part-of"] == "deps-library"
    assert made["-sidecar"]["greeting"] == "hello from bundled"


def test_a_sub_chart_from_a_second_repository_is_fetched_there(
    deps: Stack, alice: dict[str, str], project: str, kube: KubeClient, second: HelmRepoServer
) -> None:
    made = running_then_deleted(deps, alice, project, kube, "fetched")
    assert made["-sidecar"]["greeting"] == "hello from fetched"
    assert made["-settings"]["label:app.kubernetes.io/part-of"] == "deps-library"
    assert second.hit_count("/extras/deps-library-0.3.0.tgz") == 1
    assert second.hit_count("/extras/sidecar-2.1.0.tgz") == 1


@pytest.mark.parametrize(
    ("catalog", "chart", "expected"),
    [
        ("strict", "fetched", "fetched 1.0.0 needs sidecar ~2.1: {extras}/index.yaml: {refused}"),
        (
            "deps",
            "stray",
            "stray 1.0.0 needs sidecar 9.0.0, which neither its package (charts/), its "
            "catalogue's repository nor {extras} has",
        ),
        (
            "deps",
            "orphan",
            "orphan 1.0.0 needs deps-library ^0.3.0, which neither its package (charts/) nor "
            "its catalogue's repository has, and it names no repository to fetch it from",
        ),
    ],
)
def test_a_dependency_that_cannot_be_had_is_a_422_naming_it_and_why(
    deps: Stack,
    alice: dict[str, str],
    project: str,
    kube: KubeClient,
    extras: str,
    catalog: str,
    chart: str,
    expected: str,
) -> None:
    message = expected.format(extras=extras, refused=REFUSED)
    form = httpx.get(f"{deps.url}/api/catalogs/{catalog}/charts/{chart}/form", headers=alice)
    checked = httpx.post(
        f"{deps.url}/api/catalogs/{catalog}/charts/{chart}/validate",
        json={"values": {}},
        headers=alice,
        timeout=30,
    )
    launched = launch(deps, alice, project, catalog, chart)
    for answer in (form, checked, launched):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == message
    assert released(kube, project) == []
