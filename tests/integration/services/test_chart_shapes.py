"""Charts of the shapes published Onyxia charts have (tests/fixtures/shapes), launched through
the API on the local control plane with real Helm: what is ours to get right (errors named,
hooks not counted) is checked with the message the user reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD
from onyxia_py.kube import KubeClient
from onyxia_py.settings import KubernetesSettings

from ..oidc_stack import Stack, bearer
from .helpers import catalogue_stack, leftovers, phases

SHAPES = Path(__file__).parents[2] / "fixtures" / "shapes"


@pytest.fixture(scope="module")
def shapes(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    definitions = [{"id": "shapes", "name": "Shapes", "location": str(SHAPES)}]
    # Room for one 600m pod, not for it and its 600m test hook.
    quota = {"requests.cpu": "1", "requests.memory": "1Gi", "count/pods": "2"}
    tmp = tmp_path_factory.mktemp("shapes")
    with catalogue_stack(tmp, kube_settings, kube, definitions, quota=quota) as running:
        yield running


@pytest.fixture(scope="module")
def alice(shapes: Stack) -> dict[str, str]:
    return bearer(shapes.tokens("alice", ALICE_PASSWORD)["access_token"])


@pytest.fixture(scope="module")
def project(shapes: Stack) -> str:
    return shapes.settings.projects.user_namespace_prefix + "alice"


def validate(s: Stack, headers: dict[str, str], chart: str) -> httpx.Response:
    return httpx.post(
        f"{s.url}/api/catalogs/shapes/charts/{chart}/validate",
        json={"values": {}},
        headers=headers,
        timeout=30,
    )


def launch(s: Stack, headers: dict[str, str], project: str, chart: str) -> httpx.Response:
    return httpx.post(
        f"{s.url}/api/projects/{project}/services",
        json={"catalog": "shapes", "chart": chart, "values": {}},
        headers=headers,
        timeout=30,
    )


def released(kube: KubeClient, project: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kube.request_sync(
        "GET", f"/api/v1/namespaces/{project}/secrets", query={"labelSelector": "onyxia.sh/release"}
    )["items"]
    return items


def test_a_template_rendering_invalid_yaml_is_a_422_naming_file_and_line(
    shapes: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    expected = "the chart renders invalid YAML: broken-yaml/templates/configmap.yaml line 7:"
    checked = validate(shapes, alice, "broken-yaml")
    launched = launch(shapes, alice, project, "broken-yaml")
    # The same verdict from the check and from the launch, and nothing made.
    for answer in (checked, launched):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"].startswith(expected), answer.json()
    assert released(kube, project) == []


def test_a_helm_test_hook_takes_no_quota(
    shapes: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    assert validate(shapes, alice, "test-hook").status_code == 200
    # 600m fits the quota of 1 CPU; with the test hook's 600m counted it would not.
    accepted = launch(shapes, alice, project, "test-hook")
    assert accepted.status_code == 202, accepted.text
    release = accepted.json()["release"]
    last = phases(shapes, alice, accepted.json()["events_url"])[-1]
    assert last["phase"] == "running", last
    gone = httpx.delete(
        f"{shapes.url}/api/projects/{project}/services/{release}", headers=alice, timeout=60
    )
    assert gone.status_code == 204
    assert leftovers(kube, project, release) == []


def test_fixed_object_names_say_which_object_exists_and_whose_it_is(
    shapes: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    first = launch(shapes, alice, project, "fixed-names")
    assert first.status_code == 202, first.text
    owner = first.json()["release"]
    assert phases(shapes, alice, first.json()["events_url"])[-1]["phase"] == "running"
    second = launch(shapes, alice, project, "fixed-names")
    assert second.status_code == 202, second.text
    last = phases(shapes, alice, second.json()["events_url"])[-1]
    assert last["phase"] == "failed", last
    assert last["message"].startswith(
        f'ConfigMap "fixed-names-settings" already exists in {project}: it belongs to '
        f'service "fixed-names" ({owner})'
    ), last["message"]
    assert "everything it created was removed" in last["message"]
    assert leftovers(kube, project, second.json()["release"]) == []
    # The first one is untouched.
    kept = kube.request_sync("GET", f"/api/v1/namespaces/{project}/configmaps/fixed-names-settings")
    assert kept["metadata"]["annotations"]["meta.helm.sh/release-name"] == owner
    for release in (owner,):
        url = f"{shapes.url}/api/projects/{project}/services/{release}"
        assert httpx.delete(url, headers=alice, timeout=60).status_code == 204
