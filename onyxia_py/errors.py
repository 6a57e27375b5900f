"""The errors of onyxia-py.

Every failure a user can be told about is one of these; adapters translate library errors into
them at their boundary, and one handler (`api/problems.py`) maps them to RFC 7807
`application/problem+json`. Anything else is a bug and becomes a bare 500 with a request id.

    OnyxiaError
    ├── NotFound          404  the thing does not exist (or the caller may not know it does)
    ├── Forbidden         403  authenticated, but not allowed (including by Kubernetes RBAC)
    ├── Unauthenticated   401  no valid credentials
    ├── Conflict          409  the thing exists already, or changed under us
    ├── Invalid           422  bad input, with one entry per offending field
    ├── QuotaExceeded     403  the request does not fit what the quota has left
    ├── OperationFailed   502  a system we depend on tried and failed (e.g. a Helm install)
    └── Unavailable       503  a system we depend on cannot be reached
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One reason why one input field was refused."""

    field: str
    reason: str


class OnyxiaError(Exception):
    """Base of every error a user can be told about."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "error"
    title: ClassVar[str] = "Error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFound(OnyxiaError):
    """The thing asked for does not exist."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(OnyxiaError):
    """The caller is known but not allowed to do this."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class Unauthenticated(OnyxiaError):
    """The caller gave no valid credentials."""

    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Conflict(OnyxiaError):
    """The change clashes with the current state."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class Invalid(OnyxiaError):
    """The input was refused; `errors` says which field and why."""

    status = 422
    slug = "invalid"
    title = "Invalid input"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, **extensions: Any):
        super().__init__(detail, **extensions)
        self.errors = errors or []


class NoCapacity(OnyxiaError):
    """No node of the cluster could ever run what was asked for (more GPUs than any has)."""

    status = 422
    slug = "no-capacity"
    title = "No node can run it"


class QuotaExceeded(OnyxiaError):
    """The request does not fit in what the project's quota has left."""

    status = 403
    slug = "quota-exceeded"
    title = "Quota exceeded"


class OperationFailed(OnyxiaError):
    """A system we depend on was reached but could not do what was asked."""

    status = 502
    slug = "operation-failed"
    title = "Operation failed"


class Unavailable(OnyxiaError):
    """A system we depend on (database, Kubernetes, S3, ...) cannot be reached; `retry_after`
    (seconds), when known, becomes the answer's Retry-After header."""

    status = 503
    slug = "unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int | None = None, **extensions: Any):
        super().__init__(detail, **extensions)
        self.retry_after = retry_after
