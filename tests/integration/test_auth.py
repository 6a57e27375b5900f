"""Authentication against a real OpenID Provider (npm oidc-provider) and a served app."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, make_rsa_jwk
from devtools.oidcflows import login

from ..support import mint, tamper, unsigned
from .oidc_stack import Stack, bearer, browser_login, csrf, stack


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("auth")) as running:
        yield running


def assert_unauthenticated(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


# -- browser sessions ------------------------------------------------------------------------


def test_code_flow_opens_a_session(oidc: Stack) -> None:
    http, done = browser_login(oidc, "alice", ALICE_PASSWORD)
    assert done.status_code == 303
    assert done.headers["location"] == "/api/me"
    cookie = done.headers["set-cookie"]
    assert "onyxia-session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    me = http.get("/api/me").json()
    assert me["username"] == "alice"
    assert me["auth_method"] == "session"
    assert me["is_admin"] is True
    assert me["groups"] == ["stats", "Data Science/ML"]
    assert [p["id"] for p in me["projects"]] == ["user-alice", "projet-stats"]
    assert me["email"] == "alice@example.org"


def test_logins_are_audited(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    events = http.get("/api/admin/audit", params={"actor": "alice"}).json()
    assert any(e["action"] == "auth.login" and e["outcome"] == "success" for e in events)


def test_a_non_admin_is_refused_admin_pages(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "bob", BOB_PASSWORD)
    me = http.get("/api/me").json()
    assert me["is_admin"] is False
    assert me["email"] is None  # bob's email is not verified
    refused = http.get("/api/admin/audit")
    assert refused.status_code == 403
    assert "administrator" in refused.json()["detail"]


@pytest.mark.parametrize(
    "target", ["https://evil.example/phish", "//evil.example/x", "/\\evil.example"]
)
def test_open_redirects_after_login_are_refused(oidc: Stack, target: str) -> None:
    _, done = browser_login(oidc, "alice", ALICE_PASSWORD, next_path=target)
    assert done.status_code == 303
    assert done.headers["location"] == "/"


def test_callback_without_the_login_cookie_is_refused(oidc: Stack) -> None:
    http = oidc.http()
    start = http.get("/auth/login")
    back = login(http, start.headers["location"], "alice", ALICE_PASSWORD)
    stranger = oidc.http()  # another browser: the code arrives without our sealed state
    response = stranger.get(back.headers["location"])
    assert_unauthenticated(response, "log in again")


def test_state_mismatch_is_refused(oidc: Stack) -> None:
    http = oidc.http()
    start = http.get("/auth/login")
    back = login(http, start.headers["location"], "alice", ALICE_PASSWORD)
    query = parse_qs(urlsplit(back.headers["location"]).query)
    response = http.get("/auth/callback", params={"code": query["code"][0], "state": "forged"})
    assert_unauthenticated(response, "state does not match")


def test_state_changing_requests_need_the_csrf_token(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    body = {"name": "ci", "scopes": ["read"]}
    refused = http.post("/api/tokens", json=body)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "csrf"
    wrong = http.post("/api/tokens", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    accepted = http.post("/api/tokens", json=body, headers=csrf(http))
    assert accepted.status_code == 201
    assert http.post("/auth/logout").status_code == 403


def test_cookie_changes_from_another_origin_are_refused_even_with_the_csrf_token(
    oidc: Stack,
) -> None:
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    body = {"name": "origin", "scopes": ["read"]}
    token = csrf(http)
    for foreign in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": oidc.url.replace("127.0.0.1", "127.0.0.2")},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        refused = http.post("/api/tokens", json=body, headers={**token, **foreign})
        assert refused.status_code == 403, (foreign, refused.text)
        assert refused.json()["reason"] == "origin"
    # Our own pages (the public URL's origin), and clients that send no Origin at all.
    same_site = {"Origin": oidc.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert http.post("/api/tokens", json=body, headers={**token, **same_site}).status_code == 201
    assert http.post("/api/tokens", json=body, headers=token).status_code == 201


def test_logout_ends_the_session(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    cookie = http.cookies.get("onyxia-session")
    assert cookie
    out = http.post("/auth/logout", headers=csrf(http))
    assert out.status_code == 303
    assert out.headers["location"].startswith(oidc.provider.end_session_endpoint)
    assert "id_token_hint" not in out.headers["location"]
    replay = oidc.http()
    replay.cookies.set("onyxia-session", cookie)
    assert_unauthenticated(replay.get("/api/me"), "log in")


def test_home_page_logs_out_with_a_csrf_protected_form(oidc: Stack) -> None:
    anonymous = oidc.http().get("/")
    assert "Log in" in anonymous.text
    assert "Single-user mode" not in anonymous.text
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    page = http.get("/").text
    assert "alice (admin)" in page
    token = http.get("/auth/session").json()["csrf_token"]
    assert f'name="csrf_token" value="{token}"' in page
    assert http.post("/auth/logout", data={"csrf_token": "wrong"}).status_code == 403
    out = http.post("/auth/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert http.get("/api/me").status_code == 401


def test_security_headers(oidc: Stack) -> None:
    response = oidc.http().get("/healthz")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# -- bearer JWTs -------------------------------------------------------------------------------


def claims_for(s: Stack, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": s.provider.issuer,
        "aud": "onyxia",
        "sub": s.provider.user("alice").sub,
        "preferred_username": "alice",
        "groups": ["stats"],
        "roles": [],
        "iat": now,
        "exp": now + 300,
        **overrides,
    }


def test_provider_access_tokens_are_accepted(oidc: Stack) -> None:
    tokens = oidc.tokens("alice", ALICE_PASSWORD)
    me = oidc.http().get("/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice"
    assert me.json()["auth_method"] == "bearer"
    # Bearer requests are not cookie requests: no CSRF token needed.
    created = oidc.http().post(
        "/api/tokens",
        json={"name": "x", "scopes": ["read"]},
        headers=bearer(tokens["access_token"]),
    )
    assert created.status_code == 201


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"iss": "http://127.0.0.1:1/other"}, "iss"),
        ({"aud": "another-service"}, "aud"),
    ],
)
def test_invalid_claims_are_refused(oidc: Stack, overrides: dict[str, Any], reason: str) -> None:
    token = mint(oidc.provider.keys[0], claims_for(oidc, **overrides))
    assert_unauthenticated(oidc.http().get("/api/me", headers=bearer(token)), reason)


def test_id_tokens_are_not_accepted_as_bearer_tokens(oidc: Stack) -> None:
    tokens = oidc.tokens("alice", ALICE_PASSWORD)
    http = oidc.http()
    # The provider's ID token has the platform's client id as audience, like its access token.
    assert_unauthenticated(
        http.get("/api/me", headers=bearer(tokens["id_token"])), "an ID token is not an access"
    )
    assert http.get("/api/me", headers=bearer(tokens["access_token"])).status_code == 200
    # Keycloak marks its tokens with a typ claim: Bearer passes, ID and Refresh do not.
    key = oidc.provider.keys[0]
    keycloak_access = mint(key, claims_for(oidc, typ="Bearer", nonce="n"))
    assert http.get("/api/me", headers=bearer(keycloak_access)).status_code == 200
    for kind in ("ID", "Refresh"):
        minted = mint(key, claims_for(oidc, typ=kind))
        assert_unauthenticated(http.get("/api/me", headers=bearer(minted)), "not an access token")
    with_nonce = mint(key, claims_for(oidc, nonce="abc", auth_time=int(time.time())))
    assert_unauthenticated(http.get("/api/me", headers=bearer(with_nonce)), "an ID token")


def test_forged_tokens_are_refused(oidc: Stack) -> None:
    genuine = mint(oidc.provider.keys[0], claims_for(oidc))
    assert oidc.http().get("/api/me", headers=bearer(genuine)).status_code == 200
    http = oidc.http()
    assert_unauthenticated(http.get("/api/me", headers=bearer(tamper(genuine))), "signature")
    assert_unauthenticated(
        http.get("/api/me", headers=bearer(unsigned(claims_for(oidc)))), "'none'"
    )
    stranger = mint(make_rsa_jwk("attacker-key"), claims_for(oidc))
    assert_unauthenticated(http.get("/api/me", headers=bearer(stranger)), "unknown key")
    hmac_key = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "kid": "hs"}
    hs = mint(hmac_key, claims_for(oidc), alg="HS256")
    assert_unauthenticated(http.get("/api/me", headers=bearer(hs)), "'HS256'")
    assert_unauthenticated(http.get("/api/me", headers=bearer("not.a.jwt")), "token")
    assert_unauthenticated(http.get("/api/me", headers={"Authorization": "Basic abc"}), "Bearer")


def test_unverified_email_is_refused_when_required(tmp_path: Path) -> None:
    with stack(tmp_path, require_verified_email=True) as s:
        bob = s.tokens("bob", BOB_PASSWORD)
        assert_unauthenticated(
            s.http().get("/api/me", headers=bearer(bob["access_token"])), "verified email"
        )
        alice = s.tokens("alice", ALICE_PASSWORD)
        assert s.http().get("/api/me", headers=bearer(alice["access_token"])).status_code == 200


def test_key_rotation_at_the_provider_is_followed(tmp_path: Path) -> None:
    with stack(tmp_path) as s:
        before = s.tokens("alice", ALICE_PASSWORD)["access_token"]
        assert s.http().get("/api/me", headers=bearer(before)).status_code == 200
        s.provider.rotate_keys()
        after = s.tokens("alice", ALICE_PASSWORD)["access_token"]
        assert s.http().get("/api/me", headers=bearer(after)).status_code == 200
        # The old key is gone from the provider's JWKS: its tokens no longer pass.
        assert_unauthenticated(s.http().get("/api/me", headers=bearer(before)), "unknown key")


# -- sessions follow the provider's tokens ---------------------------------------------------


def test_sessions_refresh_and_end_with_the_provider(tmp_path: Path) -> None:
    # Access tokens shorter than the refresh margin: every request refreshes them.
    with stack(tmp_path, access_token_ttl=20) as s:
        http, _ = browser_login(s, "alice", ALICE_PASSWORD)
        for _ in range(3):
            assert http.get("/api/me").status_code == 200
        # The provider forgets every grant (restart): the next refresh fails, the session ends.
        s.provider.rotate_keys()
        assert_unauthenticated(http.get("/api/me"), "log in")


# -- API tokens ------------------------------------------------------------------------------


def test_api_token_scopes_and_revocation(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    headers = csrf(http)
    reader = http.post("/api/tokens", json={"name": "reader", "scopes": ["read"]}, headers=headers)
    admin = http.post(
        "/api/tokens", json={"name": "admin", "scopes": ["read", "admin"]}, headers=headers
    )
    assert reader.status_code == admin.status_code == 201
    read_token, admin_token = reader.json()["token"], admin.json()["token"]
    assert read_token.startswith("onyx_")

    script = oidc.http()
    me = script.get("/api/me", headers=bearer(read_token)).json()
    assert me["auth_method"] == "api-token"
    assert me["scopes"] == ["read"]
    refused = script.get("/api/admin/audit", headers=bearer(read_token))
    assert refused.status_code == 403
    assert "admin scope" in refused.json()["detail"]
    assert script.get("/api/admin/audit", headers=bearer(admin_token)).status_code == 200
    no_chain = script.post(
        "/api/tokens", json={"name": "x", "scopes": ["read"]}, headers=bearer(admin_token)
    )
    assert no_chain.status_code == 403

    listed = http.get("/api/tokens").json()
    assert {"reader", "admin"} <= {t["name"] for t in listed}
    assert all("token" not in t for t in listed)

    token_id = reader.json()["id"]
    assert http.delete(f"/api/tokens/{token_id}", headers=headers).status_code == 204
    assert_unauthenticated(script.get("/api/me", headers=bearer(read_token)), "revoked")
    assert http.delete(f"/api/tokens/{token_id}", headers=headers).status_code == 404


def test_tokens_never_exceed_their_owner(oidc: Stack) -> None:
    http, _ = browser_login(oidc, "bob", BOB_PASSWORD)
    refused = http.post(
        "/api/tokens", json={"name": "sneaky", "scopes": ["admin"]}, headers=csrf(http)
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "scopes"
    too_long = http.post(
        "/api/tokens",
        json={"name": "long", "scopes": ["read"], "expires_in_days": 10_000},
        headers=csrf(http),
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "expires_in_days"


def test_other_users_tokens_cannot_be_revoked(oidc: Stack) -> None:
    alice, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    made = alice.post("/api/tokens", json={"name": "mine", "scopes": ["read"]}, headers=csrf(alice))
    bob, _ = browser_login(oidc, "bob", BOB_PASSWORD)
    stolen = bob.delete(f"/api/tokens/{made.json()['id']}", headers=csrf(bob))
    assert stolen.status_code == 404
    assert oidc.http().get("/api/me", headers=bearer(made.json()["token"])).status_code == 200


def test_a_read_only_token_changes_nothing(oidc: Stack) -> None:
    """Every state-changing operation of the API, as the OpenAPI document lists them, refuses
    a read-only API token with a 403 before it looks at the request."""
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    made = http.post("/api/tokens", json={"name": "ro", "scopes": ["read"]}, headers=csrf(http))
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    spec = oidc.http().get("/openapi.json").json()
    script = oidc.http()
    # Validating a launch form changes nothing (a POST for its body).
    reads = {("post", "/api/catalogs/{catalog_id}/charts/{chart}/validate")}
    allowed = []
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in operations:
            if method not in ("post", "put", "patch", "delete") or (method, path) in reads:
                continue
            url = re.sub(r"\{[^}]+\}", "1", path)
            answer = script.request(method, url, headers=bearer(token), json={})
            if answer.status_code != 403:
                allowed.append(f"{method.upper()} {path}: {answer.status_code}")
    assert allowed == [], "a read-only token may still change:\n" + "\n".join(allowed)


def test_auth_redirects_answer_as_the_openapi_document_declares(oidc: Stack) -> None:
    spec = oidc.http().get("/openapi.json").json()["paths"]
    http, _ = browser_login(oidc, "alice", ALICE_PASSWORD)
    answers = {
        ("get", "/auth/login"): oidc.http().get("/auth/login"),
        ("post", "/auth/logout"): http.post("/auth/logout", headers=csrf(http)),
    }
    for (method, path), answer in answers.items():
        declared = spec[path][method]["responses"][str(answer.status_code)]
        # A redirect: declared without a body, answered with a Location and no JSON.
        assert "content" not in declared, (path, declared)
        assert answer.headers["location"], path
        assert "json" not in answer.headers.get("content-type", ""), (path, answer.headers)
    assert spec["/auth/callback"]["get"]["responses"]["303"], spec["/auth/callback"]
