"""The OpenAPI document declares error answers as the RFC 7807 problems they are."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from onyxia_py.api.problems import PROBLEM_JSON, PROBLEM_REF, Problem
from onyxia_py.app import create_app
from onyxia_py.settings import DatabaseSettings, KubernetesSettings, Settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        # Building the app reaches no server: no cluster and a database never opened.
        kubernetes=KubernetesSettings(kubeconfig=tmp / "none"),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"),
    )
    spec: dict[str, Any] = TestClient(create_app(settings)).get("/openapi.json").json()
    return spec


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_answer_is_a_problem(document: dict[str, Any]) -> None:
    wrong = [
        f"{method} {path} {status}: {list(response.get('content', {}))}"
        for method, path, operation in operations(document)
        for status, response in operation["responses"].items()
        if status[0] in "45"
        and response.get("content") != {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    ]
    assert wrong == []
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "request_id",
    ]
    assert schemas["Problem"]["properties"]["errors"]["items"] == {
        "$ref": "#/components/schemas/FieldProblem"
    }


def test_statuses_follow_what_an_operation_does(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert set(paths["/healthz"]["get"]["responses"]) == {"200", "500"}
    me = paths["/api/me"]["get"]["responses"]
    assert set(me) == {"200", "401", "403", "500", "503"}  # authenticates, takes no input
    create = paths["/api/tokens"]["post"]["responses"]
    assert {"400", "422"} <= set(create)  # a body that may not parse, or not validate
    assert {"404", "409", "502"} <= set(
        paths["/api/projects/{project}/services"]["post"]["responses"]
    )
    assert "404" in paths["/api/tokens/{token_id}"]["delete"]["responses"]


def test_event_streams_declare_their_events(document: dict[str, Any]) -> None:
    events = document["paths"]["/api/projects/{project}/services/{release}/events"]["get"]
    content = events["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["itemSchema"]["properties"]["event"] == {"const": "phase"}


def test_the_handlers_answers_match_the_problem_schema() -> None:
    body = {
        "type": "urn:onyxia-py:problem:invalid",
        "title": "Invalid input",
        "status": 422,
        "detail": "bad values",
        "instance": "/x",
        "request_id": "abc",
        "errors": [{"field": "cpu", "reason": "at most 4"}],
        "reason": "extensions are allowed",
    }
    assert Problem.model_validate(body).model_dump()["errors"] == body["errors"]


def test_ids_are_bounded_to_the_databases_integers(document: dict[str, Any]) -> None:
    saved = document["paths"]["/api/projects/{project}/saved/{saved_id}"]["delete"]
    token = document["paths"]["/api/tokens/{token_id}"]["delete"]
    for operation in (saved, token):
        (identifier,) = [p for p in operation["parameters"] if p["name"].endswith("_id")]
        assert identifier["schema"]["maximum"] == 2**63 - 1


def test_the_document_lists_no_html_page(document: dict[str, Any]) -> None:
    assert "/" not in document["paths"]
    assert not any(path.startswith("/static") for path in document["paths"])
