"""Onyxia's REST API against the real components: the app signed into by the real OpenID
Provider (bearer access tokens, as the Onyxia web sends them), a real chart repository and the
real API server. Every answer is validated by the pydantic model written from Onyxia's API."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import TypeAdapter

from devtools.helmrepo import HelmRepoServer, fixture_repository
from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, default_users
from onyxia_py.api.problems import PROBLEM_JSON, Problem
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.onyxia_compat.models import (
    CatalogsOut,
    ChartOut,
    HealthOut,
    IpOut,
    QuotaOut,
    UserInfoOut,
)
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..support import wait_for_catalogs
from .oidc_stack import Stack, bearer, stack

CHARTS = TypeAdapter(list[ChartOut])
SCHEMAS = TypeAdapter(dict[str, dict[str, Any]])
USER_QUOTA = {"requests.cpu": "2", "requests.memory": "2Gi", "count/pods": "5"}
GROUP_QUOTA = {"requests.cpu": "4", "count/pods": "9"}


@pytest.fixture(scope="module")
def repo() -> Iterator[HelmRepoServer]:
    with fixture_repository() as server:
        yield server


def catalogs(url: str) -> list[dict[str, Any]]:
    return [
        {"id": "ide", "name": {"en": "IDE", "fr": "EDI"}, "location": url, "password": "x-secret"},
        {
            "id": "ops-only",
            "name": "Ops",
            "location": url,
            "restrictions": [{"userAttribute": {"key": "groups", "matches": "ops"}}],
        },
        {"id": "groups", "name": "Groups", "location": url, "visible": {"user": False}},
    ]


@contextlib.contextmanager
def onyxia_stack(
    tmp: Path,
    repo: HelmRepoServer,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    **projects: Any,
) -> Iterator[tuple[Stack, str]]:
    tag = secrets.token_hex(3)
    settings = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"o{tag}-",
            group_namespace_prefix=f"og{tag}-",
            user_quota=USER_QUOTA,
            group_quota=GROUP_QUOTA,
            **projects,
        ),
        "catalogs": CatalogSettings(
            paths=[], definitions=catalogs(repo.url), cache_dir=tmp / "cache"
        ),
    }
    with stack(tmp, settings=settings, users=default_users()) as running:
        wait_for_catalogs(httpx.get, running.url)
        try:
            yield running, tag
        finally:
            for namespace in (f"o{tag}-alice", f"og{tag}-stats", f"o{tag}-bob"):
                with contextlib.suppress(NotFound):
                    kube.request_sync("DELETE", f"/api/v1/namespaces/{namespace}", body={})


@pytest.fixture(scope="module")
def onyxia(
    tmp_path_factory: pytest.TempPathFactory,
    repo: HelmRepoServer,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
) -> Iterator[tuple[Stack, str]]:
    with onyxia_stack(tmp_path_factory.mktemp("onyxia"), repo, kube_settings, kube) as running:
        yield running


@pytest.fixture(scope="module")
def s(onyxia: tuple[Stack, str]) -> Stack:
    return onyxia[0]


@pytest.fixture(scope="module")
def tag(onyxia: tuple[Stack, str]) -> str:
    return onyxia[1]


@pytest.fixture(scope="module")
def alice(s: Stack) -> dict[str, str]:
    return bearer(s.tokens("alice", ALICE_PASSWORD)["access_token"])


def get(
    s: Stack, path: str, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    return httpx.get(f"{s.url}/api{path}", headers=headers or {}, params=params, timeout=30)


def problem(answer: httpx.Response, status: int) -> Problem:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    found = Problem.model_validate(answer.json())
    assert found.status == status
    return found


def test_public_answers_need_no_credentials(s: Stack) -> None:
    assert IpOut.model_validate(get(s, "/public/ip").json()).ip == "127.0.0.1"
    health = get(s, "/public/healthcheck")
    assert health.status_code == 200
    HealthOut.model_validate(health.json())
    public = CatalogsOut.model_validate(get(s, "/public/catalogs").json())
    # Restricted catalogues need a user; visibility per project kind is the web's to apply.
    assert [c.id for c in public.catalogs] == ["ide", "groups"]
    assert "x-secret" not in get(s, "/public/catalogs").text


def test_the_schema_registry_is_served_whole_and_by_key(s: Stack) -> None:
    everything = SCHEMAS.validate_python(get(s, "/public/schemas").json())
    assert "ide/resources.json" in everything
    one = get(s, "/public/schemas/ide/resources.json", role="anyone")
    assert one.status_code == 200
    assert one.json() == everything["ide/resources.json"]
    flat = get(s, "/public/schemas/nodeSelector.json")
    assert flat.json() == everything["nodeSelector.json"]
    problem(get(s, "/public/schemas/no-such.json"), 404)


@pytest.mark.parametrize("path", ["/user/info", "/my-lab/catalogs", "/my-lab/quota"])
def test_the_rest_needs_a_token(s: Stack, path: str) -> None:
    answer = get(s, path)
    problem(answer, 401)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    problem(get(s, path, {"Authorization": "Bearer not-a-token"}), 401)


def test_user_info_lists_the_personal_project_first_and_without_group(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    body = get(s, "/user/info", alice).json()
    info = UserInfoOut.model_validate(body)
    assert info.idep == "alice"
    assert info.ip == "127.0.0.1"
    assert "stats" in info.groups
    assert info.roles == ["admin"]
    # The web asserts exactly one project has no `group` key: the personal one.
    assert [p for p in body["projects"] if "group" not in p] == [body["projects"][0]]
    assert "nomComplet" not in body
    personal, *groups = info.projects
    assert (personal.id, personal.namespace, personal.vault_top_dir) == (
        f"o{tag}-alice",
        f"o{tag}-alice",
        "alice",
    )
    # "Data Science/ML" gives no valid namespace: no project, as Onyxia drops it too.
    assert [(p.id, p.group) for p in groups] == [(f"og{tag}-stats", "stats")]


def test_my_catalogues_apply_restrictions_and_carry_the_latest_packages(
    s: Stack, alice: dict[str, str]
) -> None:
    mine = CatalogsOut.model_validate(get(s, "/my-lab/catalogs", alice).json())
    assert [c.id for c in mine.catalogs] == ["ide", "groups"]  # alice is not in ops
    ide = mine.catalogs[0]
    assert ide.name == {"en": "IDE", "fr": "EDI"}
    assert ide.location.startswith("http://127.0.0.1:")
    assert ide.visible.user
    assert ide.visible.project
    assert mine.catalogs[1].visible.user is False
    jupyter = ide.catalog.latest_packages["jupyter-lite"]
    assert jupyter.type == "application"
    assert [d.name for d in jupyter.dependencies] == ["library-chart"]
    values = yaml.safe_load(jupyter.default_values)
    assert isinstance(values, dict)
    assert "service" in values


def test_a_charts_versions_and_the_unknown_ones(s: Stack, alice: dict[str, str]) -> None:
    answer = get(s, "/my-lab/catalogs/ide/charts/jupyter-lite", alice)
    assert answer.status_code == 200, answer.text
    versions = CHARTS.validate_python(answer.json())
    assert versions
    assert {v.name for v in versions} == {"jupyter-lite"}
    problem(get(s, "/my-lab/catalogs/ide/charts/no-such-chart", alice), 404)
    problem(get(s, "/my-lab/catalogs/no-such-catalog/charts/jupyter-lite", alice), 404)
    # A catalogue alice's claims do not open is not found, not forbidden.
    problem(get(s, "/my-lab/catalogs/ops-only/charts/jupyter-lite", alice), 404)


def test_the_quota_of_the_project_the_headers_name(
    s: Stack, tag: str, alice: dict[str, str]
) -> None:
    personal = get(s, "/my-lab/quota", {**alice, "ONYXIA-REGION": "whatever-region"})
    assert personal.status_code == 200, personal.text
    quota = QuotaOut.model_validate(personal.json())
    assert quota.spec == USER_QUOTA
    assert set(quota.usage) == set(USER_QUOTA)
    empty = get(s, "/my-lab/quota", {**alice, "ONYXIA-PROJECT": ""})
    assert QuotaOut.model_validate(empty.json()).spec == USER_QUOTA  # empty: the personal one
    group = get(s, "/my-lab/quota", {**alice, "ONYXIA-PROJECT": f"og{tag}-stats"})
    assert group.status_code == 200, group.text
    assert QuotaOut.model_validate(group.json()).spec == GROUP_QUOTA


def test_a_project_of_someone_else_is_forbidden(s: Stack, tag: str, alice: dict[str, str]) -> None:
    bob = bearer(s.tokens("bob", BOB_PASSWORD)["access_token"])
    assert get(s, "/my-lab/quota", bob).status_code == 200
    for path in ("/my-lab/quota", "/my-lab/catalogs"):
        for foreign in (f"og{tag}-economics", f"o{tag}-bob", "no-such-project"):
            found = problem(get(s, path, {**alice, "ONYXIA-PROJECT": foreign}), 403)
            assert foreign in found.detail


def test_quotas_turned_off_answer_403(
    tmp_path: Path, repo: HelmRepoServer, kube_settings: KubernetesSettings, kube: KubeClient
) -> None:
    with onyxia_stack(tmp_path, repo, kube_settings, kube, quota_enabled=False) as (off, _):
        token = bearer(off.tokens("alice", ALICE_PASSWORD)["access_token"])
        problem(get(off, "/my-lab/quota", token), 403)
        assert get(off, "/my-lab/catalogs", token).status_code == 200
