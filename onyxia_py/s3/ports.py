"""What the storage domain needs from an S3 server: Protocols, so boto3 (or a fake in unit
tests) can stand behind them, and the plain frozen types they exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

PolicyDocument = dict[str, Any]


@dataclass(frozen=True)
class TemporaryCredentials:
    """Credentials an STS server issued; they stop working at `expiration`."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


@dataclass(frozen=True)
class ObjectEntry:
    """One object of a listing."""

    key: str
    size: int
    last_modified: datetime | None
    etag: str = ""


@dataclass(frozen=True)
class ObjectPage:
    """One page of a listing: objects and, with a delimiter, the folder-like prefixes."""

    objects: tuple[ObjectEntry, ...]
    prefixes: tuple[str, ...]
    next_token: str | None


@dataclass(frozen=True)
class ObjectHead:
    """What a GET or HEAD says about an object before its bytes."""

    key: str
    size: int
    content_type: str
    last_modified: datetime | None
    etag: str = ""


class ObjectStream(Protocol):
    """An object being downloaded: its head, then its bytes in chunks; close it when done."""

    head: ObjectHead

    def chunks(self) -> AsyncIterator[bytes]:
        """The object's bytes, chunk by chunk."""
        ...

    async def close(self) -> None:
        """Release the connection (safe to call twice)."""
        ...


class TokenService(Protocol):
    """STS (and, for role provisioning, IAM) calls."""

    async def assume_role_with_web_identity(
        self,
        *,
        role_arn: str,
        session_name: str,
        token: str,
        duration_seconds: int,
        policy: PolicyDocument | None = None,
    ) -> TemporaryCredentials:
        """Credentials for the identity `token` proves (unsigned call: the token is the proof),
        cut down by the session `policy` when given (they get what both the role and it allow).
        """
        ...

    async def assume_role(
        self, *, role_arn: str, session_name: str, policy: PolicyDocument, duration_seconds: int
    ) -> TemporaryCredentials:
        """Credentials of a role assumed with the platform key, cut down by a session policy."""
        ...

    async def ensure_role(
        self,
        *,
        name: str,
        trust: PolicyDocument,
        policy: PolicyDocument,
        max_session_seconds: int,
    ) -> None:
        """Create the role if missing (sessions up to `max_session_seconds`) and set its trust
        and inline permission policy."""
        ...


class ObjectStore(Protocol):
    """Bucket and object calls, each signed with the caller's temporary credentials."""

    async def bucket_exists(self, creds: TemporaryCredentials, bucket: str) -> bool:
        """True when the bucket exists and the caller may use it (Forbidden when it is not
        theirs)."""
        ...

    async def create_bucket(self, creds: TemporaryCredentials, bucket: str) -> None:
        """Create a bucket (Conflict if someone else owns that name)."""
        ...

    async def put_cors(self, creds: TemporaryCredentials, bucket: str, origins: list[str]) -> None:
        """PutBucketCors: browsers of `origins` may call the bucket (every S3 method, any
        header, ETag exposed), replacing the bucket's rules."""
        ...

    async def list_page(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        *,
        prefix: str,
        delimiter: str | None,
        token: str | None,
        limit: int,
    ) -> ObjectPage:
        """One page of objects under `prefix`."""
        ...

    async def head(self, creds: TemporaryCredentials, bucket: str, key: str) -> ObjectHead:
        """An object's size and type (NotFound if it does not exist)."""
        ...

    async def upload(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
    ) -> int:
        """Store the streamed bytes (multipart past one part); the number of bytes."""
        ...

    async def open(
        self, creds: TemporaryCredentials, bucket: str, key: str, *, byte_range: str | None = None
    ) -> ObjectStream:
        """Start downloading an object (or a `bytes=a-b` range of it)."""
        ...

    async def delete(self, creds: TemporaryCredentials, bucket: str, keys: list[str]) -> int:
        """Delete objects (any number, in batches); how many the server confirmed."""
        ...

    async def copy(
        self, creds: TemporaryCredentials, bucket: str, source: str, destination: str
    ) -> None:
        """Copy one object inside a bucket (server side)."""
        ...

    async def presign_get(
        self, creds: TemporaryCredentials, bucket: str, key: str, expires_seconds: int
    ) -> str:
        """A download URL that works without credentials until it expires."""
        ...

    async def get_policy(self, creds: TemporaryCredentials, bucket: str) -> PolicyDocument | None:
        """The bucket policy, or None when the bucket has none."""
        ...

    async def put_policy(
        self, creds: TemporaryCredentials, bucket: str, policy: PolicyDocument | None
    ) -> None:
        """Replace the bucket policy (None deletes it)."""
        ...
