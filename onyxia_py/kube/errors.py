"""Translate Kubernetes API failures into the platform's errors, at the adapter boundary."""

from __future__ import annotations

import json
from typing import Any

from onyxia_py.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    QuotaExceeded,
    Unavailable,
)
from onyxia_py.logs import redact


def status_message(body: bytes) -> tuple[str, dict[str, Any]]:
    """The message and details of a Kubernetes `Status` body (or the raw text)."""
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")[:500], {}
    if not isinstance(decoded, dict):
        return str(decoded)[:500], {}
    details = decoded.get("details")
    return str(decoded.get("message") or decoded.get("reason") or ""), (
        details if isinstance(details, dict) else {}
    )


def error_from_status(status: int, body: bytes) -> OnyxiaError:
    """The platform error for an HTTP error `status` returned by the API server."""
    message, details = status_message(body)
    message = redact(message) or f"Kubernetes answered HTTP {status}"
    if status == 403 and "exceeded quota" in message:
        return QuotaExceeded(message)
    if status == 403:
        return Forbidden(message)
    if status == 404:
        return NotFound(message)
    if status in (409, 410):
        return Conflict(message)
    if status in (400, 422):
        causes = details.get("causes") or []
        errors = [
            FieldError(str(c.get("field") or "body"), str(c.get("message") or ""))
            for c in causes
            if isinstance(c, dict)
        ]
        return Invalid(message, errors)
    if status == 401:
        return Unavailable("Kubernetes refused the platform's credentials")
    return Unavailable(f"Kubernetes answered HTTP {status}: {message}")
