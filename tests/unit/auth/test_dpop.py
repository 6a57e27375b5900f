"""DPoP proofs (RFC 9449) as the verifier sees them: a good proof gives its key's thumbprint;
a replayed one, one for another URL or method, an old or future one, one for another token and
one with a wrong key or shape are each refused, saying why."""

from __future__ import annotations

import time

import pytest

from devtools.dpop import DpopKey
from onyxia_py.auth import ASYMMETRIC_ALGORITHMS
from onyxia_py.auth.dpop import DpopRequest, DpopVerifier, ReplayCache, normalized_url
from onyxia_py.errors import Unauthenticated

URL = "https://onyxia.example.org/api/my-lab/services"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"  # only hashed into ath here


def verifier() -> DpopVerifier:
    return DpopVerifier(ASYMMETRIC_ALGORITHMS)


def test_a_good_proof_gives_the_keys_thumbprint() -> None:
    key = DpopKey()
    proof = key.proof("GET", URL, TOKEN)
    assert verifier().verify(DpopRequest(proof, "GET", URL), TOKEN) == key.thumbprint


def test_the_url_compares_without_query_fragment_case_or_default_port() -> None:
    key = DpopKey()
    proof = key.proof("GET", "https://ONYXIA.example.org:443/api/my-lab/services", TOKEN)
    request = DpopRequest(proof, "GET", URL + "?serviceId=x#top")
    assert verifier().verify(request, TOKEN) == key.thumbprint
    assert normalized_url("http://[::1]:8000/a?b") == "http://[::1]:8000/a"


def test_a_replayed_proof_is_refused() -> None:
    check, key = verifier(), DpopKey()
    proof = key.proof("GET", URL, TOKEN)
    check.verify(DpopRequest(proof, "GET", URL), TOKEN)
    with pytest.raises(Unauthenticated, match=r"used already \(jti\)"):
        check.verify(DpopRequest(proof, "GET", URL), TOKEN)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: k.proof("POST", URL, TOKEN), r"another method \(htm\)"),
        (lambda k: k.proof("GET", URL + "/other", TOKEN), r"another URL \(htu\)"),
        (lambda k: k.proof("GET", URL, TOKEN, iat=time.time() - 301), r"too old"),
        (lambda k: k.proof("GET", URL, TOKEN, iat=time.time() + 60), r"from the future"),
        (lambda k: k.proof("GET", URL, "another.access.token"), r"another access token"),
        (lambda k: k.proof("GET", URL), r"another access token \(ath\)"),
        (lambda k: k.proof("GET", URL, TOKEN, jti=""), r"jti is missing"),
    ],
)
def test_proofs_not_for_this_request_are_refused(make: object, reason: str) -> None:
    proof = make(DpopKey())  # type: ignore[operator]
    with pytest.raises(Unauthenticated, match=reason):
        verifier().verify(DpopRequest(proof, "GET", URL), TOKEN)


def test_a_proof_signed_by_another_key_than_its_header_names_is_refused() -> None:
    signer, other = DpopKey(), DpopKey()
    header, claims, signature = signer.proof("GET", URL, TOKEN).split(".")
    forged_header = other.proof("GET", URL, TOKEN).split(".")[0]
    with pytest.raises(Unauthenticated, match="signature is invalid"):
        verifier().verify(DpopRequest(f"{forged_header}.{claims}.{signature}", "GET", URL), TOKEN)
    assert header != forged_header


def test_a_bearer_token_is_no_proof() -> None:
    with pytest.raises(Unauthenticated, match="typ must be dpop\\+jwt"):
        verifier().verify(DpopRequest(TOKEN, "GET", URL), TOKEN)
    with pytest.raises(Unauthenticated, match="malformed"):
        verifier().verify(DpopRequest("not a jwt", "GET", URL), TOKEN)


def test_the_replay_cache_stays_bounded() -> None:
    cache = ReplayCache(max_entries=3)
    now = time.time()
    for jti in "abcde":
        assert cache.first_use(jti, now)
    assert len(cache._seen) <= 3
    assert not cache.first_use("e", now)
    assert cache.first_use("a", now + 1000)  # forgotten once out of any proof's lifetime
