"""The OpenAPI document (`/openapi.json`), with every error answer declared as the RFC 7807
problem it is.

FastAPI declares a 422 of its own shape as `application/json`, while `problems.py` answers
every error as `application/problem+json` with a `Problem` body. So, once per app:
- the `Problem` schema joins the components and FastAPI's validation-error schemas leave;
- every operation declares 500; one that takes input 422, and 400 when it has a body (one
  that cannot be parsed); one that authenticates 401, 403 and 503 (credentials are looked up in
  the database);
- routers and routes declare the other statuses their domain gives (`responses=problems(404)`),
  and an error response declared without a body gets the problem body.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from onyxia_py.api.deps import authenticate
from onyxia_py.api.problems import (
    PROBLEM_DESCRIPTIONS,
    PROBLEM_JSON,
    PROBLEM_REF,
    Problem,
    problems,
)

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI, routers: list[APIRouter]) -> None:
    """Serve `app`'s document with the problems of the operations of `routers` (the ones it
    includes as they are) declared; built once, when first asked for."""
    build = app.openapi
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_problems(build(), routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare_problems(document: dict[str, Any], routes: list[APIRoute]) -> dict[str, Any]:
    """`document` (FastAPI's, changed in place) with the problems of `routes` declared."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format].get(method.lower())
            if operation is not None:
                _declare(operation, route)
    return document


def _declare(operation: dict[str, Any], route: APIRoute) -> None:
    responses: dict[str, Any] = operation["responses"]
    statuses = [500]
    if "HTTPValidationError" in str(responses.get("422")):
        del responses["422"]  # FastAPI's own shape: the operation takes input
        statuses.append(422)
    if "requestBody" in operation:
        statuses.append(400)
    if authenticate in _calls(route.dependant):
        statuses += [401, 403, 503]
    for status, declared in problems(*statuses).items():
        responses.setdefault(str(status), declared)
    for status, response in responses.items():
        if status[0] in "45" and "content" not in response:
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
            if response.get("description") in (None, "", http.HTTPStatus(int(status)).phrase):
                response["description"] = PROBLEM_DESCRIPTIONS.get(int(status), "A problem")
    operation["responses"] = dict(sorted(responses.items()))


def event_stream(event: str, data: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a route answering server-sent `event` events (for `responses=`,
    with `response_class=StreamingResponse` so that no JSON answer is declared beside them)."""
    return {
        200: {
            "description": f"Server-sent `{event}` events, each with {data}",
            "content": {
                "text/event-stream": {
                    "itemSchema": {
                        "type": "object",
                        "required": ["event", "data"],
                        "properties": {
                            "event": {"const": event},
                            "data": {"type": "string", "description": data},
                            "id": {"type": "string"},
                            "retry": {"type": "integer", "minimum": 0},
                        },
                    }
                }
            },
        }
    }


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)
