"""RFC 7807 problem responses: the one place errors become HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from onyxia_py.errors import FieldError, Invalid, OnyxiaError, Unavailable

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 500: "Internal error"}
PROBLEM_REF = "#/components/schemas/Problem"

# What each status means as a problem, in the words the OpenAPI document uses.
PROBLEM_DESCRIPTIONS = {
    400: "The request could not be read (bad-request)",
    401: "No valid credentials (unauthenticated)",
    403: "Not allowed: role, scope, project, CSRF token or origin (forbidden), or over the "
    "project's quota (quota-exceeded)",
    404: "No such thing, or none the caller may see (not-found)",
    409: "Clashes with the current state (conflict)",
    422: "Input refused; `errors` names each field and why (invalid), or more GPUs than any "
    "node offers (no-capacity)",
    500: "An unexpected error; quote `request_id` when reporting it (internal)",
    502: "A system the platform depends on tried and failed (operation-failed)",
    503: "A system the platform depends on cannot be reached (unavailable)",
}


class FieldProblem(BaseModel):
    """One refused input field and why."""

    field: str = Field(description="Dotted path of the field, e.g. `resources.cpu` or `body`.")
    reason: str


class Problem(BaseModel):
    """An RFC 7807 problem: the body of every error answer (`application/problem+json`).
    Some kinds add members of their own: `errors` (invalid), `reason` (forbidden: csrf or
    origin; unavailable), `resources` (quota-exceeded, no-capacity), `checks` (not-ready)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`urn:onyxia-py:problem:<kind>`, e.g. `...:not-found`.")
    title: str
    status: int
    detail: str = Field(description="What went wrong, in words.")
    instance: str = Field(description="The path that was requested.")
    request_id: str = Field(description="Also in the X-Request-ID header; quote it in reports.")
    errors: list[FieldProblem] = Field(
        default_factory=list, description="One entry per refused field (invalid only)."
    )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring `statuses` as problem+json answers (for `responses=`)."""
    return {
        status: {
            "description": PROBLEM_DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


def problem_type(slug: str) -> str:
    """The `type` URI of a problem kind."""
    return f"urn:onyxia-py:problem:{slug}"


def problem_response(
    request: Request,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response carrying the request id."""
    request_id = str(request.scope.get("request_id", "-"))
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id,
    }
    body.update(extensions or {})
    return JSONResponse(
        body,
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={"X-Request-ID": request_id, **(headers or {})},
    )


def _field_errors(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"field": e.field, "reason": e.reason} for e in errors]


async def _onyxia_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OnyxiaError)
    extensions = dict(exc.extensions)
    if isinstance(exc, Invalid):
        extensions["errors"] = _field_errors(exc.errors)
    headers = {"WWW-Authenticate": 'Bearer realm="onyxia-py"'} if exc.status == 401 else {}
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(
        request,
        status=exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        extensions=extensions,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The offending input is never echoed back: it may be a secret.
    errors = [
        FieldError(".".join(str(p) for p in err.get("loc", ())[1:]) or "body", str(err["msg"]))
        for err in exc.errors()
    ]
    return await _onyxia_error(request, Invalid("the request is not valid", errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    title = _TITLES.get(exc.status_code, "Error")
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        request,
        status=exc.status_code,
        slug=title.lower().replace(" ", "-"),
        title=title,
        detail=detail,
        headers=dict(exc.headers or {}),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.scope.get("request_id", "-")
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request,
        status=500,
        slug="internal",
        title="Internal error",
        detail=f"An unexpected error occurred. Quote request id {request_id} when reporting it.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to a problem+json answer, never a stack trace."""
    app.add_exception_handler(OnyxiaError, _onyxia_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
