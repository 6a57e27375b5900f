"""Helm failures become platform errors, with secrets redacted."""

from __future__ import annotations

import helm_python as helm
import pytest

from onyxia_py.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    OperationFailed,
    QuotaExceeded,
    Unavailable,
)
from onyxia_py.helm.sdk import release_info, translate


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (helm.HelmNotFoundError("release: not found"), NotFound),
        (helm.HelmReleaseError('secrets is forbidden: User "bob" cannot create'), Forbidden),
        (helm.HelmReleaseError("pods is forbidden: exceeded quota: onyxia-quota"), QuotaExceeded),
        (helm.HelmReleaseError("cannot re-use a name that is still in use"), Conflict),
        (helm.HelmValuesError("values don't meet the specifications of the schema"), Invalid),
        (helm.HelmRenderError("template: x.yaml:3: nil pointer"), Invalid),
        (helm.HelmKubeError("Kubernetes cluster unreachable"), Unavailable),
        (helm.HelmReleaseError("context deadline exceeded"), OperationFailed),
    ],
)
def test_translation(exc: helm.HelmError, expected: type[OnyxiaError]) -> None:
    error = translate(exc, "installing x")
    assert type(error) is expected
    assert error.detail.startswith("installing x: ")


def test_translation_redacts() -> None:
    error = translate(helm.HelmReleaseError("failed: password=hunter2hunter2"), "install")
    assert "hunter2hunter2" not in error.detail


def test_release_info_reads_sdk_summaries() -> None:
    info = release_info(
        {
            "name": "hello",
            "namespace": "user-alice",
            "revision": 2,
            "status": "deployed",
            "notes": "hi",
            "deployed_at": "2026-11-24T12:03:49Z",
            "chart_name": "hello",
            "chart_version": "0.1.0",
            "app_version": "1.36",
        },
        "fallback",
    )
    assert (info.name, info.namespace, info.revision, info.status) == (
        "hello",
        "user-alice",
        2,
        "deployed",
    )
    assert (info.chart, info.chart_version, info.app_version, info.notes, info.updated) == (
        "hello",
        "0.1.0",
        "1.36",
        "hi",
        "2026-11-24T12:03:49Z",
    )
