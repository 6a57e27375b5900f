"""The app end to end: operational endpoints on the real cluster and database."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from onyxia_py.app import create_app
from onyxia_py.settings import DatabaseSettings, KubernetesSettings, Settings


def test_readyz_is_200_against_the_real_cluster(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        for _ in range(100):  # the catalogues load in the background
            response = client.get("/readyz")
            if response.json()["checks"]["catalogs"] == "ok":
                break
            time.sleep(0.1)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ready",
            "checks": {"database": "ok", "kubernetes": "ok", "catalogs": "ok"},
        }
        assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_failing_dependency(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: secret-token-value}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    settings = Settings(
        kubernetes=KubernetesSettings(kubeconfig=broken, readiness_timeout_seconds=2),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"),
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["kubernetes"] != "ok"
    assert "kubernetes" in body["detail"]
    assert "secret-token-value" not in response.text


def test_metrics_count_requests_by_route(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        client.get("/healthz")
        client.get("/healthz")
        text = client.get("/metrics").text
    assert (
        'onyxia_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 2.0'
        in text
    )
    assert "onyxia_http_requests_in_flight" in text


def test_openapi_is_served(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 200
        schema = client.get("/openapi.json").json()
    assert "/readyz" in schema["paths"]
