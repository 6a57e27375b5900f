"""A DPoP client key for tests (RFC 9449): signs proofs as a browser with DPoP on does."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import warnings
from typing import Any

import authlib.deprecate  # noqa: F401

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebSignature


class DpopKey:
    """An EC P-256 key pair; `proof()` makes the DPoP header of one request."""

    def __init__(self) -> None:
        self._key: Any = JsonWebKey.generate_key("EC", "P-256", is_private=True)
        self.public_jwk: dict[str, Any] = self._key.as_dict(is_private=False)

    @property
    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint (a bound token's `cnf.jkt`)."""
        return str(self._key.thumbprint())

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        *,
        iat: float | None = None,
        jti: str | None = None,
        **extra: Any,
    ) -> str:
        """A DPoP proof for `method` `url` (with `ath` when sent with `access_token`)."""
        claims: dict[str, Any] = {
            "jti": jti if jti is not None else secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(iat if iat is not None else time.time()),
            **extra,
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk}
        signed = JsonWebSignature().serialize_compact(
            header, json.dumps(claims).encode(), self._key
        )
        return signed.decode() if isinstance(signed, bytes) else str(signed)
