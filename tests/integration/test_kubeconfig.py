"""The kubeconfig a user downloads for their namespace (account page)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.localoidc import ALICE_PASSWORD
from onyxia_py.settings import KubernetesSettings

from .oidc_stack import Stack, bearer, browser_login, stack

PUBLIC = "https://k8s.example.org:6443"
CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("kubeconfig")
    kubernetes = KubernetesSettings(kubeconfig=tmp / "none", public_url=PUBLIC, public_ca_pem=CA)
    with stack(tmp, settings={"kubernetes": kubernetes}) as running:
        yield running


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return decoded


def test_a_kubeconfig_for_my_namespace_with_my_token(exposed: Stack) -> None:
    http, _ = browser_login(exposed, "alice", ALICE_PASSWORD)
    answer = http.get("/api/me/kubeconfig", params={"project": "projet-stats"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/yaml")
    assert answer.headers["cache-control"] == "no-store"
    assert "kubeconfig-projet-stats.yaml" in answer.headers["content-disposition"]
    config = yaml.safe_load(answer.text)
    context = config["contexts"][0]["context"]
    assert config["current-context"] == config["contexts"][0]["name"]
    assert context["namespace"] == "projet-stats"
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == PUBLIC
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == CA
    token = config["users"][0]["user"]["token"]
    assert claims(token)["iss"] == exposed.provider.issuer
    # The token is the provider's access token of this very session: the platform accepts it.
    assert exposed.http().get("/api/me", headers=bearer(token)).json()["username"] == "alice"
    assert "Download kubeconfig" in http.get("/account").text
    personal = http.get("/api/me/kubeconfig")
    assert yaml.safe_load(personal.text)["contexts"][0]["context"]["namespace"] == "user-alice"


def test_only_my_projects_and_only_from_a_login(exposed: Stack) -> None:
    http, _ = browser_login(exposed, "alice", ALICE_PASSWORD)
    refused = http.get("/api/me/kubeconfig", params={"project": "user-bob"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    token = exposed.tokens("alice", ALICE_PASSWORD)["access_token"]
    scripted = exposed.http().get("/api/me/kubeconfig", headers=bearer(token))
    assert scripted.status_code == 409
    assert "browser session" in scripted.json()["detail"]
    assert token not in scripted.text


def test_no_kubeconfig_unless_the_api_is_exposed(tmp_path: Path) -> None:
    with stack(tmp_path) as hidden:
        http, _ = browser_login(hidden, "alice", ALICE_PASSWORD)
        answer = http.get("/api/me/kubeconfig")
        assert answer.status_code == 404
        assert "does not expose" in answer.json()["detail"]
        assert "Download kubeconfig" not in http.get("/account").text
