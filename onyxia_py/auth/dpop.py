"""DPoP (RFC 9449): proofs that the caller holds the key an access token is bound to.

The stock Onyxia web asks its provider for DPoP-bound access tokens when the provider supports
them, and sends each request with `Authorization: DPoP <token>` and a `DPoP` header: a JWT
signed with the browser's private key, whose public key is in its header. A proof is accepted
when its header says `typ: dpop+jwt` with an asymmetric `alg` and a public `jwk`, its signature
verifies with that key, `htm` and `htu` name this very request (method, URL without query or
fragment), `iat` is within the last `MAX_AGE_SECONDS` (and at most `LEEWAY_SECONDS` ahead),
`ath` is the hash of the token it comes with, and its `jti` was not seen before. The key's
thumbprint (RFC 7638) must then equal the token's `cnf.jkt`: `Accounts` checks that.
"""

from __future__ import annotations

import base64
import hashlib
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import authlib.deprecate  # noqa: F401  (see onyxia_py/auth/jwt.py)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

from onyxia_py.auth.jwt import ASYMMETRIC_ALGORITHMS, unverified_header
from onyxia_py.errors import Unauthenticated

MAX_AGE_SECONDS = 300  # how old a proof may be (its iat)
LEEWAY_SECONDS = 5  # how far ahead of our clock its iat may be
MAX_JTI_LENGTH = 256
MAX_REMEMBERED = 100_000  # proof ids kept for replay checks (each for MAX_AGE_SECONDS)
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


@dataclass(frozen=True)
class DpopRequest:
    """A request's DPoP proof with what it must name."""

    proof: str
    method: str
    url: str  # as the client addressed it (the platform's public URL + path)


def b64url_sha256(text: str) -> str:
    """base64url (no padding) of the SHA-256 of `text`: `ath` and `jkt` values."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def normalized_url(url: str) -> str:
    """`url` as `htu` compares (RFC 9449 §4.3): no query, no fragment, scheme and host lower
    case, default ports dropped."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port is None or port == default else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port is None or port == default else f"[{host}]:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


class ReplayCache:
    """The `jti` of proofs seen within their lifetime; bounded (oldest forgotten first).

    Per process: a proof replayed to another replica within its lifetime is not caught here
    (the token it comes with is still needed, and is bound to the same key)."""

    def __init__(self, max_entries: int = MAX_REMEMBERED) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries

    def first_use(self, jti: str, now: float) -> bool:
        """Remember `jti`; False when it was seen within MAX_AGE_SECONDS."""
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= MAX_AGE_SECONDS + LEEWAY_SECONDS and len(self._seen) < self._max:
                break
            del self._seen[oldest]
        if jti in self._seen:
            return False
        self._seen[jti] = now
        return True


class DpopVerifier:
    """Checks DPoP proofs; returns the thumbprint of the key that signed them."""

    def __init__(self, algorithms: frozenset[str], replay: ReplayCache | None = None) -> None:
        self._algorithms = algorithms & ASYMMETRIC_ALGORITHMS
        self._replay = replay or ReplayCache()

    def verify(self, request: DpopRequest, access_token: str, *, now: float | None = None) -> str:
        """The RFC 7638 thumbprint (`jkt`) of the proof's key, or Unauthenticated saying why."""
        moment = time.time() if now is None else now
        header = unverified_header(request.proof)
        if header.get("typ") != "dpop+jwt":
            raise Unauthenticated("DPoP proof: its typ must be dpop+jwt")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise Unauthenticated("DPoP proof: its algorithm is not accepted")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or _PRIVATE_MEMBERS & jwk.keys():
            raise Unauthenticated("DPoP proof: its header must carry a public jwk")
        try:
            key: Any = JsonWebKey.import_key(jwk)
            claims = JsonWebToken([algorithm]).decode(request.proof, key)
            thumbprint = str(key.thumbprint())
        except JoseError:
            raise Unauthenticated("DPoP proof: its signature is invalid") from None
        except (ValueError, TypeError, KeyError, AttributeError):
            raise Unauthenticated("DPoP proof: malformed") from None
        self._check_claims(dict(claims), request, access_token, moment)
        return thumbprint

    def _check_claims(
        self, claims: dict[str, Any], request: DpopRequest, access_token: str, now: float
    ) -> None:
        if claims.get("htm") != request.method.upper():
            raise Unauthenticated("DPoP proof: it was made for another method (htm)")
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalized_url(htu) != normalized_url(request.url):
            raise Unauthenticated("DPoP proof: it was made for another URL (htu)")
        issued = claims.get("iat")
        if isinstance(issued, bool) or not isinstance(issued, int | float):
            raise Unauthenticated("DPoP proof: its iat is missing")
        if issued > now + LEEWAY_SECONDS or issued < now - MAX_AGE_SECONDS:
            raise Unauthenticated("DPoP proof: it is too old or from the future (iat)")
        if claims.get("ath") != b64url_sha256(access_token):
            raise Unauthenticated("DPoP proof: it was made for another access token (ath)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise Unauthenticated("DPoP proof: its jti is missing")
        if not self._replay.first_use(jti, now):
            raise Unauthenticated("DPoP proof: it was used already (jti)")
