"""RFC 7807 problem responses: the one place errors become HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from onyxia_py.errors import FieldError, Invalid, OnyxiaError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_TITLES = {400: "Bad request", 404: "Not found", 405: "Method not allowed", 500: "Internal error"}


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
    headers = {"WWW-Authenticate": 'Bearer realm="onyxia-py"'} if exc.status == 401 else None
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
