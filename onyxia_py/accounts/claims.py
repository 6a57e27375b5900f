"""From provider claims to an identity, roles and scopes: pure rules, no I/O."""

from __future__ import annotations

from typing import Any

from onyxia_py.accounts.models import Identity, Scope
from onyxia_py.errors import Unauthenticated
from onyxia_py.settings import AuthSettings


def claim(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted `path` (e.g. `realm_access.roles`), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str | int) and str(v))
    return ()


def identity_from_claims(claims: dict[str, Any], settings: AuthSettings) -> Identity:
    """Map verified claims to an identity; Unauthenticated if a required claim is missing."""
    issuer, subject = claims.get("iss"), claims.get("sub")
    username = claim(claims, settings.username_claim)
    if not isinstance(issuer, str) or not isinstance(subject, str) or not subject:
        raise Unauthenticated("token has no issuer or subject")
    if not isinstance(username, str) or not username:
        raise Unauthenticated(f"token has no {settings.username_claim} claim")
    email = claim(claims, settings.email_claim)
    verified = claims.get("email_verified") is True
    if settings.require_verified_email and not (isinstance(email, str) and verified):
        raise Unauthenticated("a verified email is required and this token has none")
    # Keycloak's full group paths start with '/': the group is the path without it.
    groups = tuple(g.lstrip("/") for g in _strings(claim(claims, settings.groups_claim)))
    return Identity(
        issuer=issuer,
        subject=subject,
        username=username,
        email=email if isinstance(email, str) and verified else None,
        groups=tuple(g for g in groups if g),
        roles=_strings(claim(claims, settings.roles_claim)),
    )


def is_admin(roles: tuple[str, ...], settings: AuthSettings) -> bool:
    """True when one of `roles` is the operator-configured admin role."""
    return settings.admin_role in roles


def user_scopes(admin: bool) -> frozenset[Scope]:
    """What a logged-in user may do: read and launch, and administer if admin."""
    scopes = {Scope.READ, Scope.LAUNCH}
    if admin:
        scopes.add(Scope.ADMIN)
    return frozenset(scopes)


def token_scopes(asked: tuple[str, ...], admin: bool) -> frozenset[Scope]:
    """A token's scopes, never more than its owner has now."""
    return frozenset(Scope(s) for s in asked if s in Scope.__members__.values()) & user_scopes(
        admin
    )


def safe_next(target: str | None) -> str:
    """`target` if it is a same-origin relative path, else `/` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    return target
