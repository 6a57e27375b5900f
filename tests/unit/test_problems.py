"""Errors become RFC 7807 problems; unknown failures become a bare 500 with a request id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from onyxia_py.api.middleware import Metrics, RequestContextMiddleware
from onyxia_py.api.problems import PROBLEM_JSON, install_problem_handlers
from onyxia_py.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    OperationFailed,
    QuotaExceeded,
    Unauthenticated,
    Unavailable,
)

SECRET = "sk-live-do-not-leak-0123456789"


class Launch(BaseModel):
    cpu: int = Field(ge=1, le=8)
    password: str


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        RequestContextMiddleware, metrics=Metrics(), trust_request_id=True, access_log=False
    )
    install_problem_handlers(app)

    errors: dict[str, OnyxiaError] = {
        "not-found": NotFound("no service jupyter-1 in user-alice"),
        "forbidden": Forbidden("alice may not launch in projet-stats"),
        "unauthenticated": Unauthenticated("log in first"),
        "conflict": Conflict("release jupyter-1 exists"),
        "invalid": Invalid("bad values", [FieldError("resources.cpu", "at most 4")]),
        "quota": QuotaExceeded("requested 4 CPU, 1.5 available in user-alice", requested="4"),
        "failed": OperationFailed("install timed out"),
        "unavailable": Unavailable("cannot reach Kubernetes"),
        "unavailable-retry": Unavailable("the database did not answer in time", retry_after=5),
    }

    @app.get("/raise/{kind}")
    async def raise_(kind: str) -> None:
        raise errors[kind]

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError(f"database password is {SECRET}")

    @app.post("/launch")
    async def launch(body: Launch) -> dict[str, int]:
        return {"cpu": body.cpu}

    return app


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("kind", "status", "slug"),
    [
        ("not-found", 404, "not-found"),
        ("forbidden", 403, "forbidden"),
        ("unauthenticated", 401, "unauthenticated"),
        ("conflict", 409, "conflict"),
        ("invalid", 422, "invalid"),
        ("quota", 403, "quota-exceeded"),
        ("failed", 502, "operation-failed"),
        ("unavailable", 503, "unavailable"),
    ],
)
def test_errors_map_to_problems(client: TestClient, kind: str, status: int, slug: str) -> None:
    response = client.get(f"/raise/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == f"urn:onyxia-py:problem:{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == f"/raise/{kind}"
    assert body["request_id"] == response.headers["x-request-id"]


def test_unavailable_says_when_to_retry_if_it_knows(client: TestClient) -> None:
    assert "retry-after" not in client.get("/raise/unavailable").headers
    response = client.get("/raise/unavailable-retry")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == PROBLEM_JSON


def test_invalid_lists_each_field_and_reason(client: TestClient) -> None:
    body = client.get("/raise/invalid").json()
    assert body["errors"] == [{"field": "resources.cpu", "reason": "at most 4"}]


def test_quota_problem_carries_its_extensions(client: TestClient) -> None:
    body = client.get("/raise/quota").json()
    assert body["detail"] == "requested 4 CPU, 1.5 available in user-alice"
    assert body["requested"] == "4"


def test_request_validation_names_fields_without_echoing_input(client: TestClient) -> None:
    response = client.post("/launch", json={"cpu": 987654, "password": 12345678})
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "urn:onyxia-py:problem:invalid"
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"cpu", "password"}
    assert "987654" not in response.text
    assert "12345678" not in response.text


def test_unknown_exception_is_a_500_without_trace_or_secret(client: TestClient) -> None:
    response = client.get("/crash", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["request_id"] == "trace-me-1"
    assert "trace-me-1" in body["detail"]
    assert SECRET not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["type"] == "urn:onyxia-py:problem:not-found"


def test_malformed_request_ids_are_replaced(client: TestClient) -> None:
    response = client.get("/raise/conflict", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32
