"""Claims to identities, scopes and safe redirects."""

from __future__ import annotations

from typing import Any

import pytest

from onyxia_py.accounts.claims import (
    claim,
    identity_from_claims,
    safe_next,
    token_scopes,
    user_scopes,
)
from onyxia_py.accounts.models import Scope
from onyxia_py.errors import Unauthenticated
from onyxia_py.settings import AuthSettings

BASE: dict[str, Any] = {
    "iss": "https://sso.example/realms/datalab",
    "sub": "4c1e-uuid",
    "preferred_username": "alice",
    "email": "alice@example.org",
    "email_verified": True,
    "groups": ["/stats", "economics"],
    "realm_access": {"roles": ["admin", "user"]},
}


def test_keycloak_claims() -> None:
    identity = identity_from_claims(BASE, AuthSettings(roles_claim="realm_access.roles"))
    assert identity.username == "alice"
    assert identity.subject == "4c1e-uuid"
    assert identity.groups == ("stats", "economics")
    assert identity.roles == ("admin", "user")
    assert identity.email == "alice@example.org"


def test_unverified_email_is_dropped_or_refused() -> None:
    claims = {**BASE, "email_verified": False}
    assert identity_from_claims(claims, AuthSettings()).email is None
    with pytest.raises(Unauthenticated, match="verified email"):
        identity_from_claims(claims, AuthSettings(require_verified_email=True))


@pytest.mark.parametrize("missing", ["sub", "iss", "preferred_username"])
def test_required_claims(missing: str) -> None:
    claims = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(Unauthenticated):
        identity_from_claims(claims, AuthSettings())


def test_dotted_claims() -> None:
    assert claim(BASE, "realm_access.roles") == ["admin", "user"]
    assert claim(BASE, "realm_access.nothing") is None
    assert claim(BASE, "email.deeper") is None


def test_scopes_never_exceed_the_owner() -> None:
    assert user_scopes(False) == {Scope.READ, Scope.LAUNCH}
    assert Scope.ADMIN in user_scopes(True)
    assert token_scopes(("read", "admin"), admin=False) == {Scope.READ}
    assert token_scopes(("read", "admin"), admin=True) == {Scope.READ, Scope.ADMIN}
    assert token_scopes(("bogus",), admin=True) == frozenset()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/services?x=1", "/services?x=1"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/path", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_cookie_policy() -> None:
    from onyxia_py.api.deps import CookiePolicy

    secure = CookiePolicy.for_url("https://datalab.example.org")
    assert secure.name.startswith("__Host-")
    assert secure.secure is True
    local = CookiePolicy.for_url("http://127.0.0.1:8000")
    assert not local.name.startswith("__Host-")
    assert local.secure is False
