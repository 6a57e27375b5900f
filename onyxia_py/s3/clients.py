"""boto3 clients for the S3 adapter. The only place clients are made.

Clients come from one shared botocore session (service models load once) with explicit
credentials, never from the environment's credential chain, and are kept per access key for a
while (a user browsing makes many calls with one key). Blocking calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from onyxia_py.errors import NotFound
from onyxia_py.s3.errors import translate
from onyxia_py.s3.ports import PolicyDocument, TemporaryCredentials
from onyxia_py.settings import S3Settings

T = TypeVar("T")

_CLIENT_CACHE = 128


def compact(document: PolicyDocument) -> str:
    """Policy JSON without whitespace (RGW's IAM refuses documents that have any)."""
    return json.dumps(document, separators=(",", ":"))


def aware(value: Any) -> datetime | None:
    """A timestamp from boto3 with its time zone (UTC when it has none); None otherwise."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def credentials_of(answer: dict[str, Any]) -> TemporaryCredentials:
    """The credentials of an STS answer."""
    raw = answer["Credentials"]
    expiration = aware(raw["Expiration"])
    assert expiration is not None
    return TemporaryCredentials(
        access_key_id=str(raw["AccessKeyId"]),
        secret_access_key=str(raw["SecretAccessKey"]),
        session_token=str(raw["SessionToken"]),
        expiration=expiration,
    )


class Clients:
    """boto3 clients for one settings object, made from a shared botocore session."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._session = boto3.session.Session(botocore_session=botocore.session.Session())
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        addressing = "path" if settings.path_style else "virtual"
        common: dict[str, Any] = {
            "connect_timeout": min(10.0, settings.request_timeout_seconds),
            "read_timeout": settings.request_timeout_seconds,
            "retries": {"max_attempts": 3, "mode": "standard"},
            "max_pool_connections": 32,
            # Only what S3-compatible servers understand: no CRC trailers they may refuse.
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            # AWS_ENDPOINT_URL and friends in the environment must not redirect our calls.
            "ignore_configured_endpoint_urls": True,
        }
        self.s3_config = Config(
            s3={"addressing_style": addressing},  # type: ignore[arg-type]
            signature_version="s3v4",
            **common,
        )
        self.sts_config = Config(**common)
        self.unsigned_config = Config(signature_version=UNSIGNED, **common)

    def _make(self, service: str, config: Config, key: tuple[str, str, str | None] | None) -> Any:
        endpoint = (
            self.settings.sts_endpoint_url or self.settings.endpoint_url
            if service in ("sts", "iam")
            else self.settings.endpoint_url
        )
        kwargs: dict[str, Any] = {}
        if key is not None:
            kwargs = {
                "aws_access_key_id": key[0],
                "aws_secret_access_key": key[1],
                "aws_session_token": key[2],
            }
        with self._lock:  # boto3 sessions are not thread-safe; the clients they make are
            return self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=endpoint,
                region_name=self.settings.region,
                verify=self.settings.verify_tls,
                config=config,
                **kwargs,
            )

    def s3(self, creds: TemporaryCredentials) -> Any:
        """An S3 client signed with `creds` (cached by access key)."""
        cache_key = ("s3", creds.access_key_id)
        with self._lock:
            client = self._cache.get(cache_key)
            if client is not None:
                self._cache.move_to_end(cache_key)
                return client
        client = self._make(
            "s3",
            self.s3_config,
            (creds.access_key_id, creds.secret_access_key, creds.session_token),
        )
        with self._lock:
            self._cache[cache_key] = client
            while len(self._cache) > _CLIENT_CACHE:
                self._cache.popitem(last=False)
        return client

    def platform(self, service: str) -> Any:
        """A client signed with the platform key."""
        cache_key = (service, "platform")
        with self._lock:
            client = self._cache.get(cache_key)
        if client is None:
            access, secret = self.settings.access_key_id, self.settings.secret_access_key
            if access is None or secret is None:
                raise NotFound("the platform has no S3 key (s3.access_key_id)")
            client = self._make(
                service,
                self.sts_config if service != "s3" else self.s3_config,
                (access.get_secret_value(), secret.get_secret_value(), None),
            )
            with self._lock:
                self._cache[cache_key] = client
        return client

    def anonymous_sts(self) -> Any:
        """An unsigned STS client (AssumeRoleWithWebIdentity carries its own proof)."""
        cache_key = ("sts", "anonymous")
        with self._lock:
            client = self._cache.get(cache_key)
        if client is None:
            client = self._make("sts", self.unsigned_config, None)
            with self._lock:
                self._cache[cache_key] = client
        return client


async def call(what: str, fn: Callable[[], T]) -> T:
    """Run a blocking boto3 call in a worker thread; translate its failure."""
    try:
        return await asyncio.to_thread(fn)
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, what) from None
