"""In-memory stand-ins for the S3 adapter's Protocols (`ObjectStore`, `TokenService`) and for
accounts' `UserTokens`, for unit tests of the storage domain."""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from onyxia_py.errors import Conflict, Forbidden, NotFound
from onyxia_py.s3 import ObjectEntry, ObjectHead, ObjectPage, PolicyDocument, TemporaryCredentials

_serial = itertools.count(1)


def credentials(seconds: int = 900) -> TemporaryCredentials:
    """Fresh fake credentials valid for `seconds`."""
    n = next(_serial)
    return TemporaryCredentials(
        access_key_id=f"AK{n:06d}",
        secret_access_key=f"secret-{n}",
        session_token=f"token-{n}",
        expiration=datetime.now(UTC) + timedelta(seconds=seconds),
    )


@dataclass
class FakeTokens:
    """STS and IAM: records every call."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refuse: bool = False

    async def assume_role_with_web_identity(
        self,
        *,
        role_arn: str,
        session_name: str,
        token: str,
        duration_seconds: int,
        policy: PolicyDocument | None = None,
    ) -> TemporaryCredentials:
        call: dict[str, Any] = {"role": role_arn, "name": session_name, "token": token}
        if policy is not None:
            call["policy"] = policy
        self.calls.append(("web", call))
        if self.refuse:
            raise Forbidden("getting S3 credentials: the S3 server refused")
        return credentials(duration_seconds)

    async def assume_role(
        self, *, role_arn: str, session_name: str, policy: PolicyDocument, duration_seconds: int
    ) -> TemporaryCredentials:
        self.calls.append(("role", {"role": role_arn, "name": session_name, "policy": policy}))
        return credentials(duration_seconds)

    async def ensure_role(
        self,
        *,
        name: str,
        trust: PolicyDocument,
        policy: PolicyDocument,
        max_session_seconds: int,
    ) -> None:
        self.calls.append(("ensure", {"name": name, "trust": trust, "policy": policy}))


@dataclass
class FakeUserTokens:
    """Accounts: one access token per user id (None: no session)."""

    tokens: dict[int, str] = field(default_factory=dict)
    asked: list[tuple[int, int | None]] = field(default_factory=list)

    async def provider_access_token(
        self, user_id: int, session_id: int | None = None
    ) -> str | None:
        self.asked.append((user_id, session_id))
        return self.tokens.get(user_id)


class FakeStream:
    """A download of bytes held in memory."""

    def __init__(self, head: ObjectHead, data: bytes) -> None:
        self.head = head
        self._data = data

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 4096):
            yield self._data[start : start + 4096]

    async def close(self) -> None:
        return None


@dataclass
class FakeStore:
    """Buckets of objects in memory; `ranges` records the byte ranges read."""

    buckets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    policies: dict[str, PolicyDocument] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)
    cors: dict[str, list[str]] = field(default_factory=dict)  # bucket: allowed origins
    cors_calls: int = 0

    def _bucket(self, bucket: str) -> dict[str, bytes]:
        if bucket not in self.buckets:
            raise NotFound(f"no bucket {bucket}")
        return self.buckets[bucket]

    async def bucket_exists(self, creds: TemporaryCredentials, bucket: str) -> bool:
        return bucket in self.buckets

    async def create_bucket(self, creds: TemporaryCredentials, bucket: str) -> None:
        if bucket in self.buckets:
            raise Conflict("exists")
        self.buckets[bucket] = {}
        self.created.append(bucket)

    async def put_cors(self, creds: TemporaryCredentials, bucket: str, origins: list[str]) -> None:
        self._bucket(bucket)
        self.cors[bucket] = origins
        self.cors_calls += 1

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
        keys = sorted(k for k in self._bucket(bucket) if k.startswith(prefix))
        objects, prefixes = [], []
        for key in keys:
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                folder = prefix + rest.split(delimiter, 1)[0] + delimiter
                if folder not in prefixes:
                    prefixes.append(folder)
            else:
                objects.append(key)
        start = int(token or 0)
        page = objects[start : start + limit]
        more = start + limit < len(objects)
        entries = tuple(
            ObjectEntry(k, len(self.buckets[bucket][k]), datetime.now(UTC)) for k in page
        )
        return ObjectPage(entries, tuple(prefixes), str(start + limit) if more else None)

    async def head(self, creds: TemporaryCredentials, bucket: str, key: str) -> ObjectHead:
        objects = self._bucket(bucket)
        if key not in objects:
            raise NotFound(f"no {key}")
        return ObjectHead(key, len(objects[key]), "application/octet-stream", None)

    async def upload(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
    ) -> int:
        data = b"".join([c async for c in chunks])
        self._bucket(bucket)[key] = data
        return len(data)

    async def open(
        self, creds: TemporaryCredentials, bucket: str, key: str, *, byte_range: str | None = None
    ) -> FakeStream:
        head = await self.head(creds, bucket, key)
        data = self.buckets[bucket][key]
        if byte_range:
            self.ranges.append(byte_range)
            first, last = byte_range.removeprefix("bytes=").split("-")
            data = data[int(first) : int(last) + 1]
        return FakeStream(head, data)

    async def delete(self, creds: TemporaryCredentials, bucket: str, keys: list[str]) -> int:
        objects = self._bucket(bucket)
        for key in keys:
            objects.pop(key, None)
        return len(keys)

    async def copy(
        self, creds: TemporaryCredentials, bucket: str, source: str, destination: str
    ) -> None:
        objects = self._bucket(bucket)
        objects[destination] = objects[source]

    async def presign_get(
        self, creds: TemporaryCredentials, bucket: str, key: str, expires_seconds: int
    ) -> str:
        return f"https://s3.example/{bucket}/{key}?X-Amz-Expires={expires_seconds}"

    async def get_policy(self, creds: TemporaryCredentials, bucket: str) -> PolicyDocument | None:
        policy = self.policies.get(bucket)
        return copy.deepcopy(policy) if policy else None

    async def put_policy(
        self, creds: TemporaryCredentials, bucket: str, policy: PolicyDocument | None
    ) -> None:
        if policy is None:
            self.policies.pop(bucket, None)
        else:
            self.policies[bucket] = copy.deepcopy(policy)
