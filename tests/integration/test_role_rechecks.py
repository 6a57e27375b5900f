"""API tokens never keep power their owner lost at the provider: against the real OpenID
Provider, an admin-scoped token follows the provider's roles within `auth.roles_recheck_seconds`,
and the tokens of an account the provider deleted are suspended until a login."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.localoidc import OidcUser

from .oidc_stack import Stack, bearer, browser_login, csrf, stack

RECHECK = 1  # seconds: the shortest the setting allows, so the test need not wait long


def root(*roles: str) -> OidcUser:
    return OidcUser("root", "root-password", sub="root-sub", roles=list(roles))


@pytest.fixture
def recheck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    users = [root("admin"), OidcUser("lea", "lea-password", sub="lea-sub", roles=["admin"])]
    with stack(
        tmp_path_factory.mktemp("recheck"), users=users, roles_recheck_seconds=RECHECK
    ) as running:
        yield running


def admin_token(s: Stack, username: str) -> tuple[httpx.Client, str]:
    http, done = browser_login(s, username, f"{username}-password")
    assert done.status_code == 303, done.text
    made = http.post(
        "/api/tokens", json={"name": "ops", "scopes": ["read", "admin"]}, headers=csrf(http)
    )
    assert made.status_code == 201, made.text
    return http, str(made.json()["token"])


def after_recheck() -> None:
    time.sleep(RECHECK + 0.5)


def test_an_admin_token_loses_admin_when_the_provider_takes_the_role(recheck: Stack) -> None:
    _, token = admin_token(recheck, "root")
    script = recheck.http()
    assert script.get("/api/admin/audit", headers=bearer(token)).status_code == 200
    recheck.provider.put_user(root())
    after_recheck()
    refused = script.get("/api/admin/audit", headers=bearer(token))
    assert refused.status_code == 403, refused.text
    me = script.get("/api/me", headers=bearer(token)).json()
    assert (me["is_admin"], me["roles"]) == (False, [])
    # Given back, it works again at the next re-check.
    recheck.provider.put_user(root("admin"))
    after_recheck()
    assert script.get("/api/admin/audit", headers=bearer(token)).status_code == 200


def test_tokens_of_a_deleted_account_are_suspended_until_a_login(recheck: Stack) -> None:
    _, token = admin_token(recheck, "root")
    script = recheck.http()
    reader = script.get("/api/me", headers=bearer(token))
    assert reader.status_code == 200
    recheck.provider.remove_user("root")
    after_recheck()
    for path in ("/api/admin/audit", "/api/me"):
        answer = script.get(path, headers=bearer(token))
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["reason"] == "suspended"
        assert "Log in again" in answer.json()["detail"]
    # The account comes back and its owner logs in: the tokens work again.
    recheck.provider.put_user(root("admin"))
    _, done = browser_login(recheck, "root", "root-password")
    assert done.status_code == 303
    assert script.get("/api/admin/audit", headers=bearer(token)).status_code == 200


def test_a_logout_leaves_the_tokens_rechecked_with_the_grant_it_kept(recheck: Stack) -> None:
    http, token = admin_token(recheck, "lea")
    assert http.post("/auth/logout", headers=csrf(http)).status_code == 303
    after_recheck()
    script = recheck.http()
    # Logged out of the platform, still known to the provider: the token keeps its power...
    assert script.get("/api/admin/audit", headers=bearer(token)).status_code == 200
    # ...and still follows the provider's roles through the grant its session left.
    recheck.provider.put_user(OidcUser("lea", "lea-password", sub="lea-sub"))
    after_recheck()
    assert script.get("/api/admin/audit", headers=bearer(token)).status_code == 403
