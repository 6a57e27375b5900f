"""The OpenID Provider seen from the platform: discovery, the code flow with PKCE, refresh."""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

# authlib installs an "always" filter for its deprecation warnings when first imported; import
# it before our filter so ours wins.
import authlib.deprecate  # noqa: F401
import httpx

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

from onyxia_py.auth.jwt import Claims, JwksCache, check_access_token, verify_jwt
from onyxia_py.errors import Unauthenticated, Unavailable


@dataclass(frozen=True)
class ProviderConfig:
    """How the platform reaches and trusts its OpenID Provider."""

    issuer: str
    client_id: str
    client_secret: str | None
    audience: str
    scopes: tuple[str, ...]
    algorithms: frozenset[str]
    leeway_seconds: int
    timeout_seconds: float
    jwks_min_refresh_seconds: float


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint returned (secrets: never log them)."""

    access_token: str
    expires_at: float
    refresh_token: str | None
    refresh_expires_at: float | None
    id_token: str | None


class OidcProvider:
    """One OpenID Provider: metadata and keys are fetched once and cached."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._http = http or httpx.AsyncClient(timeout=config.timeout_seconds)
        self._metadata: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.jwks = JwksCache(self._fetch_jwks, min_refresh_seconds=config.jwks_min_refresh_seconds)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, checked to belong to the configured issuer."""
        if self._metadata is None:
            async with self._lock:
                if self._metadata is None:
                    url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                    document = await self._get_json(url)
                    if document.get("issuer") != self.config.issuer:
                        raise Unavailable("the provider's discovery document names another issuer")
                    self._metadata = document
        return self._metadata

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"the OpenID Provider did not answer: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise Unavailable("the OpenID Provider answered something unexpected")
        return document

    async def _fetch_jwks(self) -> dict[str, Any]:
        return await self._get_json((await self.metadata())["jwks_uri"])

    async def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser to log in (code flow, PKCE S256)."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        query = {
            "response_type": "code",
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.config.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(code_verifier),  # type: ignore[no-untyped-call]
            "code_challenge_method": "S256",
        }
        return f"{endpoint}?{urlencode(query)}"

    async def exchange_code(self, *, code: str, code_verifier: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code for tokens."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    async def refresh(self, refresh_token: str) -> TokenSet:
        """New tokens from a refresh token (the provider may rotate it)."""
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def _token_request(self, form: dict[str, str]) -> TokenSet:
        endpoint = (await self.metadata())["token_endpoint"]
        auth: tuple[str, str] | None = None
        if self.config.client_secret:
            auth = (self.config.client_id, self.config.client_secret)
        else:
            form = {**form, "client_id": self.config.client_id}
        started = time.time()
        try:
            response = await self._http.post(
                endpoint, data=form, auth=auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the OpenID Provider did not answer: {type(exc).__name__}") from None
        if response.status_code in (400, 401):
            # The provider's error code is safe to show; its description may quote the grant.
            error = _json(response).get("error", "invalid_grant")
            raise Unauthenticated(f"the OpenID Provider refused the grant ({error})")
        if response.status_code >= 300:
            raise Unavailable(f"the OpenID Provider answered HTTP {response.status_code}")
        body = _json(response)
        if "access_token" not in body:
            raise Unavailable("the OpenID Provider returned no access token")
        refresh_in = body.get("refresh_expires_in")
        return TokenSet(
            access_token=str(body["access_token"]),
            expires_at=started + float(body.get("expires_in", 300)),
            refresh_token=body.get("refresh_token"),
            refresh_expires_at=started + float(refresh_in) if refresh_in else None,
            id_token=body.get("id_token"),
        )

    async def verify_id_token(self, id_token: str, *, nonce: str | None) -> Claims:
        """The claims of an ID token issued to this client."""
        return await verify_jwt(
            id_token,
            self.jwks,
            issuer=self.config.issuer,
            audience=self.config.client_id,
            algorithms=self.config.algorithms,
            leeway_seconds=self.config.leeway_seconds,
            nonce=nonce,
        )

    async def verify_access_token(self, token: str) -> Claims:
        """The claims of a bearer JWT meant for this platform: an access token, never an ID
        token (see check_access_token)."""
        claims = await verify_jwt(
            token,
            self.jwks,
            issuer=self.config.issuer,
            audience=self.config.audience,
            algorithms=self.config.algorithms,
            leeway_seconds=self.config.leeway_seconds,
        )
        check_access_token(token, claims)
        return claims

    async def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        """The provider's logout URL (no token in it), or None if it has none."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not endpoint:
            return None
        query = {
            "client_id": self.config.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        return f"{endpoint}?{urlencode(query)}"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
