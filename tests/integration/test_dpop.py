"""DPoP-bound access tokens (RFC 9449) from the real OpenID Provider with DPoP on, as the stock
Onyxia web sends them: accepted with a proof signed by the bound key; a replayed proof, one for
another URL or method, an expired one and one signed by another key are each refused (401),
and so is the bound token sent as a plain bearer token. Bearer tokens keep working."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.dpop import DpopKey
from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, default_users

from .oidc_stack import Stack, bearer, stack


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("dpop"), users=default_users()) as running:
        yield running


@pytest.fixture(scope="module")
def key() -> DpopKey:
    return DpopKey()


@pytest.fixture(scope="module")
def bound(platform: Stack, key: DpopKey) -> str:
    tokens = platform.tokens("alice", ALICE_PASSWORD, dpop=key)
    assert tokens["token_type"].lower() == "dpop", tokens["token_type"]
    token: str = tokens["access_token"]
    return token


def me(platform: Stack, token: str, proof: str | None, scheme: str = "DPoP") -> httpx.Response:
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx.get(f"{platform.url}/api/me", headers=headers, timeout=30)


def detail(answer: httpx.Response) -> str:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    text: str = answer.json()["detail"]
    return text


def test_a_bound_token_with_its_proof_is_accepted(
    platform: Stack, key: DpopKey, bound: str
) -> None:
    answer = me(platform, bound, key.proof("GET", f"{platform.url}/api/me", bound))
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == "alice"


def test_a_replayed_proof_is_refused(platform: Stack, key: DpopKey, bound: str) -> None:
    proof = key.proof("GET", f"{platform.url}/api/me", bound)
    assert me(platform, bound, proof).status_code == 200
    assert "used already" in detail(me(platform, bound, proof))


def test_proofs_for_another_request_or_time_are_refused(
    platform: Stack, key: DpopKey, bound: str
) -> None:
    url = f"{platform.url}/api/me"
    other_url = key.proof("GET", f"{platform.url}/api/me/tokens", bound)
    assert "another URL" in detail(me(platform, bound, other_url))
    other_method = key.proof("POST", url, bound)
    assert "another method" in detail(me(platform, bound, other_method))
    expired = key.proof("GET", url, bound, iat=time.time() - 600)
    assert "too old" in detail(me(platform, bound, expired))


def test_a_proof_from_another_key_is_refused(platform: Stack, bound: str) -> None:
    thief = DpopKey()
    proof = thief.proof("GET", f"{platform.url}/api/me", bound)
    assert "not bound to" in detail(me(platform, bound, proof))


def test_a_bound_token_is_not_a_bearer_token(platform: Stack, bound: str) -> None:
    assert "DPoP-bound" in detail(me(platform, bound, None, scheme="Bearer"))
    assert "DPoP proof" in detail(me(platform, bound, None))


def test_bearer_tokens_keep_working_and_need_no_proof(platform: Stack, key: DpopKey) -> None:
    plain = platform.tokens("bob", BOB_PASSWORD)["access_token"]
    assert httpx.get(f"{platform.url}/api/me", headers=bearer(plain)).status_code == 200
    proof = key.proof("GET", f"{platform.url}/api/me", plain)
    assert "not DPoP-bound" in detail(me(platform, plain, proof))


def test_the_provider_binds_the_token_to_the_key(bound: str, key: DpopKey) -> None:
    payload = bound.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["cnf"]["jkt"] == key.thumbprint
