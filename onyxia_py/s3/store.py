"""`ObjectStore` over boto3: buckets, objects, streamed uploads and downloads, policies."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from onyxia_py.errors import NotFound, OnyxiaError
from onyxia_py.s3.clients import Clients, aware, call, compact
from onyxia_py.s3.errors import refusal, translate
from onyxia_py.s3.ports import (
    ObjectEntry,
    ObjectHead,
    ObjectPage,
    PolicyDocument,
    TemporaryCredentials,
)
from onyxia_py.settings import S3Settings

log = logging.getLogger(__name__)

# S3 wants parts of at least 5 MiB (but the last); 8 MiB keeps memory small and calls few.
PART_BYTES = 8 * 1024 * 1024
DOWNLOAD_CHUNK = 1024 * 1024
DELETE_BATCH = 1000


class _BotoStream:
    """An object download: the head, then the body in chunks read in worker threads."""

    def __init__(self, head: ObjectHead, body: Any) -> None:
        self.head = head
        self._body = body
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The bytes, one chunk at a time."""
        try:
            while True:
                try:
                    chunk: bytes = await asyncio.to_thread(self._body.read, DOWNLOAD_CHUNK)
                except (ClientError, BotoCoreError) as exc:
                    raise translate(exc, "downloading") from None
                if not chunk:
                    return
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the body's connection."""
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._body.close)


class BotoObjectStore:
    """`ObjectStore` over boto3."""

    def __init__(self, settings: S3Settings) -> None:
        self._clients = Clients(settings)

    async def bucket_exists(self, creds: TemporaryCredentials, bucket: str) -> bool:
        """HEAD the bucket: False when it does not exist."""
        s3 = self._clients.s3(creds)
        try:
            await call(f"reading bucket {bucket}", lambda: s3.head_bucket(Bucket=bucket))
        except NotFound:
            return False
        return True

    async def create_bucket(self, creds: TemporaryCredentials, bucket: str) -> None:
        """Create `bucket` (in the configured region unless it is us-east-1)."""
        s3 = self._clients.s3(creds)
        region = self._clients.settings.region
        extra: dict[str, Any] = (
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
            if region != "us-east-1"
            else {}
        )
        await call(f"creating bucket {bucket}", lambda: s3.create_bucket(Bucket=bucket, **extra))

    async def put_cors(self, creds: TemporaryCredentials, bucket: str, origins: list[str]) -> None:
        """PutBucketCors with one rule for `origins` (what a browser's S3 client needs)."""
        s3 = self._clients.s3(creds)
        rules = {"CORSRules": [cors_rule(origins)]}
        await call(
            f"setting the CORS rules of {bucket}",
            lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=rules),
        )

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
        """ListObjectsV2, one page."""
        s3 = self._clients.s3(creds)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        answer = await call(f"listing {bucket}", lambda: s3.list_objects_v2(**kwargs))
        objects = tuple(
            ObjectEntry(
                key=str(o["Key"]),
                size=int(o.get("Size", 0)),
                last_modified=aware(o.get("LastModified")),
                etag=str(o.get("ETag", "")).strip('"'),
            )
            for o in answer.get("Contents") or []
        )
        prefixes = tuple(str(p["Prefix"]) for p in answer.get("CommonPrefixes") or [])
        next_token = answer.get("NextContinuationToken") if answer.get("IsTruncated") else None
        return ObjectPage(objects, prefixes, str(next_token) if next_token else None)

    async def head(self, creds: TemporaryCredentials, bucket: str, key: str) -> ObjectHead:
        """HeadObject."""
        s3 = self._clients.s3(creds)
        answer = await call(f"reading {key}", lambda: s3.head_object(Bucket=bucket, Key=key))
        return _head(key, answer)

    async def upload(
        self,
        creds: TemporaryCredentials,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
    ) -> int:
        """One PutObject for small bodies; a multipart upload of 8 MiB parts otherwise."""
        s3 = self._clients.s3(creds)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= PART_BYTES:
                    if upload_id is None:
                        started = await call(
                            f"uploading {key}",
                            lambda: s3.create_multipart_upload(
                                Bucket=bucket, Key=key, ContentType=content_type
                            ),
                        )
                        upload_id = str(started["UploadId"])
                    part, buffer = bytes(buffer[:PART_BYTES]), buffer[PART_BYTES:]
                    parts.append(await self._part(s3, bucket, key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                body = bytes(buffer)
                await call(
                    f"uploading {key}",
                    lambda: s3.put_object(
                        Bucket=bucket, Key=key, Body=body, ContentType=content_type
                    ),
                )
                return total
            if buffer:
                parts.append(
                    await self._part(s3, bucket, key, upload_id, len(parts) + 1, bytes(buffer))
                )
            done_id = upload_id
            await call(
                f"uploading {key}",
                lambda: s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=done_id, MultipartUpload={"Parts": parts}
                ),
            )
            upload_id = None
            return total
        finally:
            if upload_id is not None:
                aborted = upload_id
                try:
                    await call(
                        f"abandoning the upload of {key}",
                        lambda: s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=aborted),
                    )
                except OnyxiaError as exc:
                    log.warning("%s", exc.detail)

    @staticmethod
    async def _part(
        s3: Any, bucket: str, key: str, upload_id: str, number: int, data: bytes
    ) -> dict[str, Any]:
        answer = await call(
            f"uploading {key}",
            lambda: s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            ),
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def open(
        self, creds: TemporaryCredentials, bucket: str, key: str, *, byte_range: str | None = None
    ) -> _BotoStream:
        """GetObject; the body is read later, in chunks."""
        s3 = self._clients.s3(creds)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        answer = await call(f"downloading {key}", lambda: s3.get_object(**kwargs))
        return _BotoStream(_head(key, answer), answer["Body"])

    async def delete(self, creds: TemporaryCredentials, bucket: str, keys: list[str]) -> int:
        """DeleteObjects in batches of 1000."""
        s3 = self._clients.s3(creds)
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            answer = await call(
                f"deleting from {bucket}",
                lambda batch=batch: s3.delete_objects(  # type: ignore[misc]
                    Bucket=bucket, Delete={"Objects": batch, "Quiet": False}
                ),
            )
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                code = str(first.get("Code", ""))
                raise refusal(
                    code, 403 if code == "AccessDenied" else 0, f"deleting {first.get('Key', '')}"
                )
            deleted += len(answer.get("Deleted") or [])
        return deleted

    async def copy(
        self, creds: TemporaryCredentials, bucket: str, source: str, destination: str
    ) -> None:
        """A server-side copy (multipart past 5 GiB, as boto3's managed copy does)."""
        s3 = self._clients.s3(creds)
        await call(
            f"copying {source}",
            lambda: s3.copy({"Bucket": bucket, "Key": source}, bucket, destination),
        )

    async def presign_get(
        self, creds: TemporaryCredentials, bucket: str, key: str, expires_seconds: int
    ) -> str:
        """A presigned GetObject URL (signed locally, no call to the server)."""
        s3 = self._clients.s3(creds)
        url: str = await call(
            f"signing a link to {key}",
            lambda: s3.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
            ),
        )
        return url

    async def get_policy(self, creds: TemporaryCredentials, bucket: str) -> PolicyDocument | None:
        """GetBucketPolicy; None when there is none."""
        s3 = self._clients.s3(creds)
        try:
            answer = await call(
                f"reading the policy of {bucket}", lambda: s3.get_bucket_policy(Bucket=bucket)
            )
        except NotFound:
            return None
        document: PolicyDocument = json.loads(answer["Policy"])
        return document

    async def put_policy(
        self, creds: TemporaryCredentials, bucket: str, policy: PolicyDocument | None
    ) -> None:
        """PutBucketPolicy, or DeleteBucketPolicy for None."""
        s3 = self._clients.s3(creds)
        if policy is None:
            await call(
                f"removing the policy of {bucket}", lambda: s3.delete_bucket_policy(Bucket=bucket)
            )
            return
        text = compact(policy)
        await call(
            f"setting the policy of {bucket}",
            lambda: s3.put_bucket_policy(Bucket=bucket, Policy=text),
        )


def _head(key: str, answer: dict[str, Any]) -> ObjectHead:
    return ObjectHead(
        key=key,
        size=int(answer.get("ContentLength", 0)),
        content_type=str(answer.get("ContentType") or "application/octet-stream"),
        last_modified=aware(answer.get("LastModified")),
        etag=str(answer.get("ETag", "")).strip('"'),
    )


def cors_rule(origins: list[str]) -> dict[str, Any]:
    """The CORS rule a browser's S3 client needs on a bucket: every method, any header, and
    ETag exposed (multipart uploads read it), cached for 3000 s."""
    return {
        "AllowedOrigins": list(origins),
        "AllowedMethods": ["GET", "PUT", "POST", "DELETE", "HEAD"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 3000,
    }
