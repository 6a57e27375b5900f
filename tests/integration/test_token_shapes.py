"""Property-based: whatever shape a bearer token has (a JOSE header whose alg or kid is a list,
an object or a number, segments that are not base64 or not JSON, claims of the wrong type in a
token that the provider's own key signed), the served app answers a 401 problem, never a 5xx.
The OpenID Provider and the app are real."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..support import mint
from .oidc_stack import Stack, bearer, stack

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
SHAPES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def oidc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("token-shapes")) as running:
        yield running


@pytest.fixture(scope="module")
def http(oidc: Stack) -> Iterator[httpx.Client]:
    client = oidc.http()
    yield client
    client.close()


def segment(value: Any) -> str:
    """A base64url JWT segment holding `value` as JSON (or raw bytes)."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


@SHAPES
@given(
    alg=JSON,
    kid=JSON,
    payload=JSON | st.binary(max_size=20),
    signature=st.binary(max_size=40),
)
def test_any_header_shape_is_a_401(
    http: httpx.Client, alg: Any, kid: Any, payload: Any, signature: bytes
) -> None:
    token = ".".join(
        [segment({"alg": alg, "kid": kid, "typ": "JWT"}), segment(payload), segment(signature)]
    )
    assert_refused(http.get("/api/me", headers=bearer(token)))


@SHAPES
@given(token=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60))
def test_any_printable_token_is_a_401(http: httpx.Client, token: str) -> None:
    assert_refused(http.get("/api/me", headers=bearer(token or "x")))


@SHAPES
@given(
    claim=st.sampled_from(
        [
            "iss",
            "aud",
            "exp",
            "nbf",
            "iat",
            "sub",
            "preferred_username",
            "groups",
            "roles",
            "email",
            "email_verified",
        ]
    ),
    value=JSON,
)
def test_claims_of_any_type_signed_by_the_provider_never_fail(
    oidc: Stack, http: httpx.Client, claim: str, value: Any
) -> None:
    claims = {
        "iss": oidc.provider.issuer,
        "aud": "onyxia",
        "sub": "shape-tester",
        "preferred_username": "shape-tester",
        "exp": 4_102_444_800,
        "iat": 1_700_000_000,
        claim: value,
    }
    answer = http.get("/api/me", headers=bearer(mint(oidc.provider.keys[0], claims)))
    # A well-typed value may make a valid token; anything else is refused, never a 5xx.
    if answer.status_code != 200:
        assert_refused(answer)
