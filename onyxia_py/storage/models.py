"""Object storage as the rest of the platform sees it: frozen types, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from onyxia_py.catalog.context import ContextS3
from onyxia_py.s3 import ObjectEntry, TemporaryCredentials

# The buckets a set of credentials is cut down to (a session policy); None: all the user's.
BucketScope: TypeAlias = tuple[str, ...] | None


@dataclass(frozen=True)
class StorageUser:
    """Whom credentials are for: the name buckets and roles are derived from, the OIDC subject
    a per-user role trusts, and the groups whose buckets they may use."""

    user_id: int
    username: str
    subject: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class TokenHint:
    """Where the caller's OIDC access token comes from: the request's bearer token, else their
    session (a given one, or the newest)."""

    web_token: str | None = field(default=None, repr=False)
    session_id: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """The S3 endpoint as clients need it: URL, host[:port], region, addressing."""

    url: str
    host: str
    port: int
    secure: bool
    region: str
    path_style: bool

    @property
    def authority(self) -> str:
        """host[:port], the port left out when it is the scheme's default."""
        default = 443 if self.secure else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class IssuedCredentials:
    """Temporary credentials with what a client needs to use them."""

    credentials: TemporaryCredentials
    endpoint: Endpoint
    bucket: str


@dataclass(frozen=True)
class Snippet:
    """A ready-to-paste piece of code using a set of credentials."""

    id: str
    title: str
    language: str
    code: str = field(repr=False)


@dataclass(frozen=True)
class Listing:
    """One page of a bucket, folder style."""

    bucket: str
    prefix: str
    folders: tuple[str, ...]
    objects: tuple[ObjectEntry, ...]
    next_token: str | None


@dataclass(frozen=True)
class Usage:
    """What a bucket holds."""

    bucket: str
    objects: int
    bytes: int


@dataclass(frozen=True)
class Preview:
    """The head of an object, decoded as far as its kind allows."""

    key: str
    kind: str  # "text", "csv", "json", "parquet" or "binary"
    size: int
    truncated: bool
    text: str | None = None
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    data: Any = None
    total_rows: int | None = None


@dataclass(frozen=True)
class PreparedS3:
    """What a launch gets: the `s3.*` context and the Secret to create, or a warning."""

    context: ContextS3 | None
    secret: dict[str, Any] | None = field(default=None, repr=False)
    warning: str | None = None


@dataclass(frozen=True)
class InjectedStatus:
    """The credentials the platform keeps in a service's Secret."""

    release: str
    namespace: str
    owner: str
    user_id: int
    bucket: str
    expires_at: datetime | None
    refreshed_at: datetime | None
    created_at: datetime | None
    error: str | None
