"""Who is calling, and the credentials they hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Scope(StrEnum):
    """What a credential allows: read, launch services, administer the platform."""

    READ = "read"
    LAUNCH = "launch"
    ADMIN = "admin"


class AuthMethod(StrEnum):
    """How a caller proved who they are."""

    SESSION = "session"
    BEARER = "bearer"
    API_TOKEN = "api-token"  # noqa: S105
    LOCAL = "local"


@dataclass(frozen=True)
class Identity:
    """A user as their provider describes them (claims already mapped)."""

    issuer: str
    subject: str
    username: str
    email: str | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    # Groups whose project belongs to another group (a name collision): no project for them.
    refused_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: int
    identity: Identity
    is_admin: bool
    scopes: frozenset[Scope]
    method: AuthMethod
    session_id: int | None = None
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def username(self) -> str:
        """The caller's username."""
        return self.identity.username

    def allows(self, scope: Scope) -> bool:
        """True when the caller's credential carries `scope`."""
        return scope in self.scopes


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and the sealed state to keep in a short-lived cookie."""

    redirect_url: str
    sealed_state: str


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the cookie value (secret) and where to go next."""

    cookie_value: str
    next_path: str
    principal: Principal


@dataclass(frozen=True)
class ApiTokenInfo:
    """An API token as its owner sees it (never the secret)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class NewApiToken:
    """A token just created: the only time its secret is shown."""

    token: str
    info: ApiTokenInfo
