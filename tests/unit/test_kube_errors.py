"""Kubernetes API failures become platform errors at the adapter boundary."""

from __future__ import annotations

import json

import pytest

from onyxia_py.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    QuotaExceeded,
    Unavailable,
)
from onyxia_py.identity import Impersonation
from onyxia_py.kube.errors import error_from_status
from onyxia_py.kube.resources import resource


def status_body(message: str, **details: object) -> bytes:
    return json.dumps({"kind": "Status", "message": message, "details": details}).encode()


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (403, 'pods is forbidden: User "alice" cannot create resource "pods"', Forbidden),
        (
            403,
            'pods "x" is forbidden: exceeded quota: onyxia-quota, requested: cpu=4',
            QuotaExceeded,
        ),
        (404, 'namespaces "nope" not found', NotFound),
        (409, 'pods "x" already exists', Conflict),
        (410, "too old resource version", Conflict),
        (401, "Unauthorized", Unavailable),
        (500, "etcdserver: request timed out", Unavailable),
    ],
)
def test_status_codes_map_to_our_errors(
    status: int, message: str, expected: type[OnyxiaError]
) -> None:
    error = error_from_status(status, status_body(message))
    assert type(error) is expected


def test_validation_causes_become_field_errors() -> None:
    body = status_body(
        "Pod is invalid",
        causes=[{"field": "metadata.name", "message": "must be a DNS label"}],
    )
    error = error_from_status(422, body)
    assert isinstance(error, Invalid)
    assert error.errors[0].field == "metadata.name"
    assert error.errors[0].reason == "must be a DNS label"


def test_non_json_bodies_are_kept_short() -> None:
    error = error_from_status(503, b"<html>" + b"x" * 5000)
    assert isinstance(error, Unavailable)
    assert len(error.detail) < 700


def test_messages_are_redacted() -> None:
    error = error_from_status(403, status_body("denied for token=abcdef123456"))
    assert "abcdef123456" not in error.detail


def test_resource_paths() -> None:
    assert resource("Pod").path("ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert resource("Namespace").path(name="ns") == "/api/v1/namespaces/ns"
    assert resource("Deployment").path("ns") == "/apis/apps/v1/namespaces/ns/deployments"
    assert resource("Pod").path() == "/api/v1/pods"
    with pytest.raises(Invalid):
        resource("Pod").path(name="orphan")
    with pytest.raises(Invalid):
        resource("Frobnicator")


@pytest.mark.parametrize(
    "bad",
    ["", "alice\r\nImpersonate-Group: x", "a\x00", "system:masters", "system:serviceaccount:a:b"],
)
def test_impersonation_refuses_header_injection(bad: str) -> None:
    with pytest.raises(Invalid):
        Impersonation(bad)
    with pytest.raises(Invalid):
        Impersonation("alice", ("ok", bad))
