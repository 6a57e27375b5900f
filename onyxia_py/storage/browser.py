"""The bucket browser: every call is made with the user's own temporary credentials, so the S3
server's policies are the final guard; keys and prefixes are checked here first, so bad paths
get a clear 422 rather than whatever the server makes of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from onyxia_py.errors import Conflict, FieldError, Invalid, NotFound
from onyxia_py.s3 import ObjectEntry, ObjectStore, ObjectStream, TemporaryCredentials
from onyxia_py.settings import S3Settings
from onyxia_py.storage import core
from onyxia_py.storage.models import Listing, Usage

log = logging.getLogger(__name__)

MAX_PAGE = 1000
# Buckets known to exist (by name): the first use creates it, later ones skip the check.
_KNOWN_MAX = 10_000


class BucketBrowser:
    """Folder-style operations on one bucket at a time."""

    def __init__(self, settings: S3Settings, store: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self._known: set[str] = set()

    async def ensure_bucket(self, creds: TemporaryCredentials, bucket: str) -> None:
        """Create the bucket on first use (the user's policy allows exactly their buckets),
        and set its CORS rules when browsers of other origins call it (s3.bucket_cors_origins),
        once per bucket and process, so that a changed setting reaches existing buckets."""
        if bucket in self._known:
            return
        if not await self.store.bucket_exists(creds, bucket):
            try:
                await self.store.create_bucket(creds, bucket)
                log.info("bucket %s created", bucket)
            except Conflict:
                pass  # created meanwhile (another request, another member of the group)
        if self.settings.bucket_cors_origins:
            await self.store.put_cors(creds, bucket, list(self.settings.bucket_cors_origins))
        if len(self._known) > _KNOWN_MAX:
            self._known.clear()
        self._known.add(bucket)

    async def list_folder(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        prefix: str,
        *,
        token: str | None,
        limit: int,
    ) -> Listing:
        """One page of a folder: its sub-folders and objects."""
        prefix = core.check_prefix(prefix)
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid("bad page size", [FieldError("limit", f"must be 1 to {MAX_PAGE}")])
        if token is not None:
            core.check_page_token(token)
        await self.ensure_bucket(creds, bucket)
        page = await self.store.list_page(
            creds, bucket, prefix=prefix, delimiter="/", token=token, limit=limit
        )
        # The folder marker of the listed folder itself is not an entry of it.
        entries = tuple(o for o in page.objects if o.key != prefix)
        return Listing(bucket, prefix, page.prefixes, entries, page.next_token)

    async def _all(
        self, creds: TemporaryCredentials, bucket: str, prefix: str
    ) -> list[ObjectEntry]:
        found: list[ObjectEntry] = []
        token: str | None = None
        while True:
            page = await self.store.list_page(
                creds, bucket, prefix=prefix, delimiter=None, token=token, limit=MAX_PAGE
            )
            found.extend(page.objects)
            token = page.next_token
            if token is None:
                return found

    async def upload(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
    ) -> int:
        """Store a streamed body at `key`; the bytes written."""
        core.check_key(key)
        await self.ensure_bucket(creds, bucket)
        return await self.store.upload(creds, bucket, key, chunks, content_type=content_type)

    async def download(self, creds: TemporaryCredentials, bucket: str, key: str) -> ObjectStream:
        """Open an object for streaming."""
        core.check_key(key)
        return await self.store.open(creds, bucket, key)

    async def delete_object(self, creds: TemporaryCredentials, bucket: str, key: str) -> None:
        """Delete one object (NotFound if it is not there)."""
        core.check_key(key)
        await self.store.head(creds, bucket, key)
        await self.store.delete(creds, bucket, [key])

    async def delete_prefix(
        self, creds: TemporaryCredentials, bucket: str, prefix: str, confirm: str
    ) -> int:
        """Delete a folder and everything under it; `confirm` must repeat the prefix."""
        prefix = core.check_prefix(prefix, allow_root=False)
        if confirm.rstrip("/") != prefix.rstrip("/"):
            raise Invalid(
                "recursive deletion needs confirmation",
                [FieldError("confirm", "must repeat the folder being deleted")],
            )
        keys = [o.key for o in await self._all(creds, bucket, prefix)]
        if not keys:
            raise NotFound(f"nothing under {prefix}")
        return await self.store.delete(creds, bucket, keys)

    async def create_folder(self, creds: TemporaryCredentials, bucket: str, path: str) -> str:
        """An empty `path/` object, so the folder shows before anything is put in it."""
        prefix = core.check_prefix(path, "path", allow_root=False)
        await self.ensure_bucket(creds, bucket)

        async def nothing() -> AsyncIterator[bytes]:
            return
            yield b""  # pragma: no cover (makes this an async generator)

        await self.store.upload(
            creds, bucket, prefix, nothing(), content_type="application/x-directory"
        )
        return prefix

    async def move(
        self, creds: TemporaryCredentials, bucket: str, source: str, destination: str
    ) -> int:
        """Move (rename) an object, or a folder when `source` ends with '/'; objects moved."""
        if source.endswith("/"):
            src = core.check_prefix(source, "source", allow_root=False)
            dst = core.check_prefix(destination, "destination", allow_root=False)
            if dst.startswith(src):
                raise Invalid(
                    "a folder cannot move into itself",
                    [FieldError("destination", "is inside the source folder")],
                )
            pairs = [(o.key, dst + o.key[len(src) :]) for o in await self._all(creds, bucket, src)]
        else:
            core.check_key(source, "source")
            core.check_key(destination, "destination")
            await self.store.head(creds, bucket, source)
            pairs = [(source, destination)]
        if not pairs:
            raise NotFound(f"nothing under {source}")
        if any(s == d for s, d in pairs):
            raise Invalid("nothing to move", [FieldError("destination", "is the source")])
        # Copy everything first: a failure half-way leaves copies, never lost objects.
        semaphore = asyncio.Semaphore(8)

        async def copy(src: str, dst: str) -> None:
            async with semaphore:
                await self.store.copy(creds, bucket, src, dst)

        await asyncio.gather(*(copy(s, d) for s, d in pairs))
        await self.store.delete(creds, bucket, [s for s, _ in pairs])
        return len(pairs)

    async def presign(
        self, creds: TemporaryCredentials, bucket: str, key: str, expires_seconds: int
    ) -> tuple[str, datetime]:
        """A download link valid for `expires_seconds` (capped by the credentials' own life,
        since a link signed with temporary credentials dies with them)."""
        core.check_key(key)
        if not 1 <= expires_seconds <= self.settings.presign_max_seconds:
            raise Invalid(
                "bad link lifetime",
                [
                    FieldError(
                        "expires_in_seconds",
                        f"must be 1 to {self.settings.presign_max_seconds}",
                    )
                ],
            )
        await self.store.head(creds, bucket, key)
        now = datetime.now(UTC)
        expires = min(now + timedelta(seconds=expires_seconds), creds.expiration)
        seconds = max(1, int((expires - now).total_seconds()))
        return await self.store.presign_get(creds, bucket, key, seconds), expires

    async def public_prefixes(self, creds: TemporaryCredentials, bucket: str) -> list[str]:
        """The prefixes the platform made public in this bucket."""
        await self.ensure_bucket(creds, bucket)
        return core.public_prefixes(await self.store.get_policy(creds, bucket), bucket)

    async def set_public(
        self, creds: TemporaryCredentials, bucket: str, prefix: str, public: bool
    ) -> list[str]:
        """Make a prefix public or private again; other policy statements stay as they are."""
        prefix = core.check_prefix(prefix)
        await self.ensure_bucket(creds, bucket)
        policy = await self.store.get_policy(creds, bucket)
        changed = (
            core.with_public(policy, bucket, prefix)
            if public
            else core.without_public(policy, prefix)
        )
        if changed != policy:
            await self.store.put_policy(creds, bucket, changed)
        return core.public_prefixes(changed, bucket)

    async def usage(self, creds: TemporaryCredentials, bucket: str, prefix: str = "") -> Usage:
        """Files and bytes of the whole bucket, or of one folder (what deleting that folder
        would remove); the empty markers that keep folders visible are not counted as files."""
        prefix = core.check_prefix(prefix)
        await self.ensure_bucket(creds, bucket)
        objects = [o for o in await self._all(creds, bucket, prefix) if not o.key.endswith("/")]
        return Usage(bucket, len(objects), sum(o.size for o in objects))
