"""Auth mode none: one local admin, still CSRF-safe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from onyxia_py.app import create_app
from onyxia_py.settings import DatabaseSettings, Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as test_client:
        yield test_client


def test_reads_need_no_login(client: TestClient) -> None:
    me = client.get("/api/me").json()
    assert me["username"] == "onyxia"
    assert me["is_admin"] is True
    assert me["auth_method"] == "local"
    assert me["scopes"] == ["read"]


def test_changes_need_a_session_and_its_csrf_token(client: TestClient) -> None:
    body = {"name": "script", "scopes": ["read", "launch"]}
    assert client.post("/api/tokens", json=body).status_code == 401
    login = client.get("/auth/login", params={"next": "/api/me"}, follow_redirects=False)
    assert login.status_code == 303
    assert login.headers["location"] == "/api/me"
    assert client.post("/api/tokens", json=body).status_code == 403
    session = client.get("/auth/session").json()
    assert session["auth_mode"] == "none"
    created = client.post("/api/tokens", json=body, headers={"X-CSRF-Token": session["csrf_token"]})
    assert created.status_code == 201
    token = created.json()["token"]
    script = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert script["scopes"] == ["launch", "read"]


def test_home_page_warns_about_single_user_mode(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Single-user mode" in page.text
    assert "<script" not in page.text
