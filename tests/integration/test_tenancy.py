"""Tenancy against the real OpenID Provider, API server and S3 server (Ceph RGW): a project has
exactly one owner, people are (issuer, subject), and the cross-user matrix holds for personal and
group projects, with group names that collide (`TeamB` and `teamb` give one namespace)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import pytest

from devtools.localoidc import OidcUser
from devtools.localrgw import LocalRgw
from onyxia_py.db import AuditLog, Database
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import DatabaseSettings, KubernetesSettings, ProjectSettings

from .oidc_stack import Stack, bearer, browser_login, stack
from .s3_stack import s3_settings, trust

# ben and cat are `teamb`; ann is `TeamB` (the same namespace once lowered); dan is alone. The
# twin has ann's username at the provider but another subject (a second or recycled account).
USERS = {
    "ben": ["teamb"],
    "cat": ["teamb"],
    "ann": ["TeamB"],
    "dan": [],
}
TWIN_SUB = "ann-second-account"


@pytest.fixture(scope="module")
def tenancy(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
) -> Iterator[Stack]:
    tag = secrets.token_hex(3)
    projects = ProjectSettings(user_namespace_prefix=f"t{tag}-", group_namespace_prefix=f"tg{tag}-")
    users = [OidcUser(name, f"{name}-password", groups=groups) for name, groups in USERS.items()]
    users.append(OidcUser("ann", "twin-password", sub=TWIN_SUB, email="twin@example.org"))
    settings = {"kubernetes": kube_settings, "projects": projects, "s3": s3_settings(rgw, tag)}
    with stack(tmp_path_factory.mktemp("tenancy"), settings=settings, users=users) as running:
        trust(rgw, running.provider)
        yield running
    for name in [*(f"t{tag}-{u}" for u in USERS), f"tg{tag}-teamb"]:
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


def token(s: Stack, name: str) -> dict[str, str]:
    return bearer(s.tokens(name, f"{name}-password")["access_token"])


def ns(s: Stack, kind: str, name: str) -> str:
    prefix = s.settings.projects.group_namespace_prefix if kind == "group" else None
    return (prefix or s.settings.projects.user_namespace_prefix) + name


@pytest.fixture(scope="module")
def callers(tenancy: Stack) -> dict[str, dict[str, str]]:
    # ben logs in first (a browser login bootstraps his projects): `teamb` claims the namespace;
    # ann's `TeamB` comes second, and she logs in too.
    for name in ("ben", "ann"):
        _, done = browser_login(tenancy, name, f"{name}-password")
        assert done.status_code == 303, done.text
    return {name: token(tenancy, name) for name in USERS}


def test_colliding_group_names_give_the_project_to_one_group(
    tenancy: Stack, callers: dict[str, dict[str, str]], kube: KubeClient
) -> None:
    team = ns(tenancy, "group", "teamb")
    http = tenancy.http()
    ben = http.get("/api/me", headers=callers["ben"]).json()
    assert team in [p["id"] for p in ben["projects"]]
    ann = http.get("/api/me", headers=callers["ann"]).json()
    assert [p["id"] for p in ann["projects"]] == [ns(tenancy, "user", "ann")]
    assert ann["groups"] == []
    [refused] = ann["refused_projects"]
    assert refused["group"] == "TeamB"
    assert refused["namespace"] == team
    assert "belongs to another group" in refused["reason"]
    # Her requests reach neither the project nor its bucket, and change nothing in it.
    for path in (f"/api/projects/{team}/services", f"/api/projects/{team}/s3/objects"):
        answer = http.get(path, headers=callers["ann"])
        assert answer.status_code == 403, (path, answer.text)
    binding = kube.request_sync(
        "GET", f"/apis/rbac.authorization.k8s.io/v1/namespaces/{team}/rolebindings/onyxia-admin"
    )
    assert [s["name"] for s in binding["subjects"]] == ["teamb"]
    namespace = kube.request_sync("GET", f"/api/v1/namespaces/{team}")
    assert namespace["metadata"]["annotations"]["onyxia-py.io/owner"] == "teamb"
    # Cat, a real member, still works there.
    assert http.get(f"/api/projects/{team}/services", headers=callers["cat"]).status_code == 200


async def test_the_refusal_is_audited_for_administrators(
    tenancy: Stack, callers: dict[str, dict[str, str]]
) -> None:
    database = Database(DatabaseSettings(url=tenancy.settings.database.url))
    try:
        events = await AuditLog(database).recent(actor="ann")
    finally:
        await database.close()
    refused = [e for e in events if e.action == "project.refused"]
    assert refused, [e.action for e in events]
    assert refused[0].details["group"] == "TeamB"
    assert refused[0].details["owner"] == "teamb"


def test_a_second_account_with_a_taken_username_is_refused(
    tenancy: Stack, callers: dict[str, dict[str, str]]
) -> None:
    # The twin logs in with its subject; the provider calls it `ann` too.
    _, answer = browser_login(tenancy, TWIN_SUB, "twin-password")
    assert answer.status_code == 401, answer.text
    assert answer.json()["reason"] == "username-taken"
    assert "belongs to another account" in answer.json()["detail"]
    twin = bearer(tenancy.tokens(TWIN_SUB, "twin-password")["access_token"])
    http = tenancy.http()
    assert http.get("/api/me", headers=twin).status_code == 401
    ann_ns = ns(tenancy, "user", "ann")
    assert http.get(f"/api/projects/{ann_ns}/services", headers=twin).status_code == 401
    assert http.get(f"/api/projects/{ann_ns}/s3/objects", headers=twin).status_code == 401
    # The first ann is untouched.
    assert http.get("/api/me", headers=callers["ann"]).json()["username"] == "ann"


@pytest.mark.parametrize(
    ("caller", "kind", "owner", "allowed"),
    [
        ("dan", "user", "dan", True),
        ("dan", "user", "ben", False),
        ("ben", "user", "dan", False),
        ("ann", "user", "ben", False),
        ("ben", "group", "teamb", True),
        ("cat", "group", "teamb", True),
        ("ann", "group", "teamb", False),
        ("dan", "group", "teamb", False),
    ],
)
def test_cross_user_matrix(
    tenancy: Stack,
    callers: dict[str, dict[str, str]],
    caller: str,
    kind: str,
    owner: str,
    allowed: bool,
) -> None:
    project = ns(tenancy, kind, owner)
    http = tenancy.http()
    for path in ("services", "s3", "s3/objects"):
        answer = http.get(f"/api/projects/{project}/{path}", headers=callers[caller])
        expected = 200 if allowed else 403
        assert answer.status_code == expected, (caller, project, path, answer.text)
    put = http.put(
        f"/api/projects/{project}/s3/object",
        params={"key": f"from-{caller}.txt"},
        content=b"x",
        headers=callers[caller],
    )
    assert put.status_code == (201 if allowed else 403), put.text


def test_the_account_page_tells_a_refused_member_why(
    tenancy: Stack, callers: dict[str, dict[str, str]]
) -> None:
    http, done = browser_login(tenancy, "ann", "ann-password", next_path="/account")
    assert done.status_code == 303
    page = http.get("/account")
    assert page.status_code == 200
    assert 'data-refused-group="TeamB"' in page.text
    assert "belongs to another group" in page.text
