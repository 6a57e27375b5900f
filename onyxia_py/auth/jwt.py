"""JWT verification against an OpenID Provider's JWKS, with an algorithm allow-list."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

# authlib installs an "always" filter for its deprecation warnings when first imported; import
# it before our filter so ours wins.
import authlib.deprecate  # noqa: F401

with warnings.catch_warnings():
    # authlib.jose warns that joserfc will replace it in authlib 2; it is what the stack names.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken, KeySet
    from authlib.jose.errors import JoseError

from onyxia_py.errors import Unauthenticated, Unavailable

# Never `none`, never HMAC: a provider's public key must not double as a shared secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

Claims = dict[str, Any]


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWT, before any verification."""
    try:
        segment = token.split(".")[0]
        padded = segment + "=" * (-len(segment) % 4)
        header = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, IndexError) as exc:
        raise Unauthenticated("malformed token") from exc
    if not isinstance(header, dict):
        raise Unauthenticated("malformed token")
    return header


class JwksCache:
    """The provider's signing keys, fetched lazily and refetched when an unknown `kid` shows up."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[dict[str, Any]]],
        *,
        min_refresh_seconds: float = 10.0,
    ) -> None:
        self._fetch = fetch
        self._min_refresh = min_refresh_seconds
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            # Another request may have refreshed while we waited; unknown kids cannot force a
            # fetch more often than min_refresh (a forged kid must not hammer the provider).
            if self._keys is not None and time.monotonic() - self._fetched_at < self._min_refresh:
                return
            document = await self._fetch()
            try:
                self._keys = JsonWebKey.import_key_set(document)
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise Unavailable(f"the provider's JWKS is unusable: {exc}") from None
            self._fetched_at = time.monotonic()

    async def key(self, kid: str | None) -> Any:
        """The key with id `kid` (the only key if the token names none)."""
        if self._keys is None:
            await self._refresh()
        found = self._find(kid)
        if found is None:
            await self._refresh()
            found = self._find(kid)
        if found is None:
            raise Unauthenticated("token signed by an unknown key")
        return found

    def _find(self, kid: str | None) -> Any:
        assert self._keys is not None
        keys = list(self._keys.keys)
        if kid is None:
            return keys[0] if len(keys) == 1 else None
        return next((k for k in keys if k.kid == kid), None)


async def verify_jwt(
    token: str,
    jwks: JwksCache,
    *,
    issuer: str,
    audience: str,
    algorithms: frozenset[str],
    leeway_seconds: int,
    nonce: str | None = None,
) -> Claims:
    """The claims of `token` once signature, algorithm, iss, aud, exp and nbf are checked."""
    header = unverified_header(token)
    algorithm, kid = header.get("alg"), header.get("kid")
    if not isinstance(algorithm, str):
        raise Unauthenticated("malformed token: its header's alg is not a string")
    if algorithm not in algorithms or algorithm not in ASYMMETRIC_ALGORITHMS:
        raise Unauthenticated(f"token algorithm {algorithm[:20]!r} is not accepted")
    if kid is not None and not isinstance(kid, str):
        raise Unauthenticated("malformed token: its header's kid is not a string")
    key = await jwks.key(kid)
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    try:
        claims = JsonWebToken([algorithm]).decode(token, key, claims_options=options)
        claims.validate(leeway=leeway_seconds)
    except JoseError as exc:
        raise Unauthenticated(_reason(exc)) from None
    except (ValueError, TypeError, KeyError, AttributeError):
        # Shapes the JOSE library does not expect (a claim of the wrong type, a broken segment).
        raise Unauthenticated("malformed token") from None
    return dict(claims)


# Claims only ID tokens carry (OpenID Connect Core, 2 and 3.3.2.11).
ID_TOKEN_CLAIMS = frozenset({"nonce", "at_hash", "c_hash", "s_hash"})


def check_access_token(token: str, claims: Claims) -> None:
    """Refuse a verified token that is not an access token, so a provider's ID token (whose
    audience is the client id, often also the bearer audience) cannot act as one. Accepted: an
    RFC 9068 access token (header `typ` at+jwt), a token whose `typ` claim is `Bearer`
    (Keycloak), or a token with no `typ` claim and none of the ID-token-only claims."""
    kind = str(unverified_header(token).get("typ", "")).lower().removeprefix("application/")
    if kind == "at+jwt":
        return
    declared = claims.get("typ")
    if declared is not None:
        if str(declared).lower() == "bearer":
            return
        raise Unauthenticated(f"a {str(declared)[:20]!r} token is not an access token")
    if ID_TOKEN_CLAIMS & claims.keys():
        raise Unauthenticated(
            "an ID token is not an access token: send the provider's access token"
        )


def _reason(exc: JoseError) -> str:
    name = type(exc).__name__
    reasons = {
        "BadSignatureError": "token signature is invalid",
        "ExpiredTokenError": "token has expired",
        "InvalidTokenError": "token is not valid yet",
        "InvalidClaimError": f"token claim is invalid: {getattr(exc, 'description', '')}",
        "MissingClaimError": f"token claim is missing: {getattr(exc, 'description', '')}",
        "DecodeError": "malformed token",
        "UnsupportedAlgorithmError": "token algorithm is not accepted",
    }
    return reasons.get(name, "token is invalid")
