"""Translate boto3/botocore failures into the platform's errors, at the adapter boundary.

RGW answers many refusals with a bare status and no AWS error code, so the status decides first.
Messages name the operation and the server's code, never a key, token or URL with a signature.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from onyxia_py.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    OperationFailed,
    Unavailable,
)

_NOT_FOUND = {"NoSuchKey", "NoSuchBucket", "NoSuchBucketPolicy", "NoSuchEntity", "NotFound", "404"}
_CONFLICT = {
    "BucketAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "BucketNotEmpty",
    "EntityAlreadyExists",
}


def refusal(code: str, status: int, what: str) -> OnyxiaError:
    """The platform error for an S3 answer with error `code` and HTTP `status`."""
    named = f" ({code})" if code and code not in ("Unknown", str(status)) else ""
    if status == 404 or code in _NOT_FOUND:
        return NotFound(f"{what}: not found{named}")
    if code in _CONFLICT or status == 409:
        return Conflict(f"{what}: conflict{named}")
    if status in (401, 403) or code == "AccessDenied":
        return Forbidden(f"{what}: the S3 server refused{named}")
    if status == 400 or code.startswith("Invalid"):
        return Invalid(f"{what}: the S3 server refused the request{named}")
    if status == 416:
        return Invalid(f"{what}: the range is not satisfiable")
    if status >= 500 or status == 0:
        return Unavailable(f"{what}: the S3 server failed (HTTP {status}){named}")
    return OperationFailed(f"{what}: HTTP {status}{named}")


def translate(exc: Exception, what: str) -> OnyxiaError:
    """The platform error for a failed S3/STS/IAM call while doing `what`."""
    if isinstance(exc, ClientError):
        response: dict[str, Any] = dict(exc.response)
        code = str((response.get("Error") or {}).get("Code") or "")
        status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        return refusal(code, status, what)
    if isinstance(exc, ParamValidationError):
        return Invalid(f"{what}: invalid parameters", [FieldError("body", "refused by the client")])
    if isinstance(exc, EndpointConnectionError | BotoConnectionError | ReadTimeoutError):
        return Unavailable(f"{what}: the S3 server cannot be reached")
    if isinstance(exc, BotoCoreError):
        return Unavailable(f"{what}: {type(exc).__name__}")
    return OperationFailed(f"{what}: {type(exc).__name__}")


__all__ = ["refusal", "translate"]
