"""Personal API tokens: what a request for one may ask, and how one is shown."""

from __future__ import annotations

from onyxia_py.accounts.models import ApiTokenInfo, Principal, Scope
from onyxia_py.db import ApiTokenRecord
from onyxia_py.errors import FieldError
from onyxia_py.settings import AuthSettings


def token_request_errors(
    name: str, scopes: list[str], days: int | None, principal: Principal, settings: AuthSettings
) -> list[FieldError]:
    """Why a request for a new API token is refused (empty when it is fine)."""
    errors = []
    if not name.strip() or len(name) > 100:
        errors.append(FieldError("name", "must be 1 to 100 characters"))
    known = {s.value for s in Scope}
    unknown = sorted(set(scopes) - known)
    if not scopes:
        errors.append(FieldError("scopes", f"choose at least one of {', '.join(sorted(known))}"))
    elif unknown:
        errors.append(FieldError("scopes", f"unknown scopes: {', '.join(unknown)}"))
    elif Scope.ADMIN.value in scopes and not principal.is_admin:
        errors.append(FieldError("scopes", "only administrators may give a token the admin scope"))
    if days is not None and not 1 <= days <= settings.api_token_max_days:
        errors.append(
            FieldError("expires_in_days", f"must be between 1 and {settings.api_token_max_days}")
        )
    return errors


def token_info(record: ApiTokenRecord) -> ApiTokenInfo:
    """A stored token as its owner sees it."""
    return ApiTokenInfo(
        id=record.id,
        name=record.name,
        prefix=record.prefix,
        scopes=record.scopes,
        created_at=record.created_at,
        expires_at=record.expires_at,
        last_used_at=record.last_used_at,
        revoked=record.revoked_at is not None,
    )
