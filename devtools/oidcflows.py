"""Walking a real OpenID Provider's flows as a browser or a script would: the login and consent
forms, RP-initiated logout, and the authorization-code flow with PKCE for test tokens."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from devtools.dpop import DpopKey
from devtools.localoidc import (
    DEFAULT_SCOPE,
    LocalOidcProvider,
    OidcClient,
    OidcLoginError,
    b64url,
    b64url_decode,
)


@dataclass
class _Form:
    """One HTML form: where it posts and its named input values."""

    action: str
    method: str
    id: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collect forms, their inputs and the text of elements with class `error`."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.errors: list[str] = []
        self._current: _Form | None = None
        self._in_error = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Track forms, inputs and error elements."""
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = _Form(
                action=attr.get("action", ""),
                method=attr.get("method", "get").lower(),
                id=attr.get("id", ""),
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attr.get("name"):
            self._current.fields[attr["name"]] = attr.get("value", "")
        if "error" in attr.get("class", "").split():
            self._in_error += 1
            self.errors.append("")
        elif self._in_error:
            self._in_error += 1

    def handle_endtag(self, tag: str) -> None:
        """Close forms and error elements."""
        if tag == "form":
            self._current = None
        if self._in_error:
            self._in_error -= 1

    def handle_data(self, data: str) -> None:
        """Keep the text of error elements."""
        if self._in_error and self.errors:
            self.errors[-1] += data


def _parse_forms(html: str) -> _FormParser:
    """Parse the forms of a page."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser


def _origin(url: str) -> tuple[str, str]:
    """Scheme and host:port of a URL."""
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _page_text(resp: httpx.Response) -> str:
    """A short excerpt of a response for error messages."""
    return f"HTTP {resp.status_code} {resp.url}: {resp.text[:600]}"


def login(
    http: httpx.Client, authorize_url: str, username: str, password: str, max_steps: int = 20
) -> httpx.Response:
    """Walk the provider's login/consent pages; return the redirect to the client (not followed).

    The returned response's `Location` header is the client's redirect_uri with `code` and
    `state` (or `error`). Raises `OidcLoginError` when the credentials are refused.
    """
    provider_origin = _origin(authorize_url)
    resp = http.get(authorize_url)
    submitted_login = False
    for _ in range(max_steps):
        if resp.is_redirect:
            location = urljoin(str(resp.url), resp.headers["location"])
            if _origin(location) != provider_origin:
                return resp
            resp = http.get(location)
            continue
        if resp.status_code != 200:
            raise OidcLoginError(_page_text(resp))
        page = _parse_forms(resp.text)
        login_forms = [f for f in page.forms if "login" in f.fields and "password" in f.fields]
        if login_forms:
            if submitted_login:
                detail = "; ".join(e.strip() for e in page.errors if e.strip()) or "login refused"
                raise OidcLoginError(f"login as {username!r} refused: {detail}")
            form = login_forms[0]
            fields = {**form.fields, "login": username, "password": password}
            submitted_login = True
        else:
            post_forms = [f for f in page.forms if f.method == "post"]
            if not post_forms:
                raise OidcLoginError(f"no form to submit: {_page_text(resp)}")
            form = post_forms[0]
            fields = dict(form.fields)
        resp = http.post(urljoin(str(resp.url), form.action), data=fields)
    raise OidcLoginError(f"no redirect to the client after {max_steps} steps")


def logout_confirm(http: httpx.Client, end_session_response: httpx.Response) -> httpx.Response:
    """Submit the provider's logout confirmation form; return its redirect (not followed).

    A redirect passed in is returned as is. The result's `Location` is the
    post_logout_redirect_uri (with `state`) or the provider's own "signed out" page.
    """
    resp = end_session_response
    if resp.is_redirect:
        return resp
    if resp.status_code != 200:
        raise OidcLoginError(f"end session failed: {_page_text(resp)}")
    forms = [f for f in _parse_forms(resp.text).forms if f.method == "post"]
    if not forms:
        raise OidcLoginError(f"no logout form: {_page_text(resp)}")
    form = forms[0]
    fields = {"logout": "yes", **form.fields}
    return http.post(urljoin(str(resp.url), form.action), data=fields)


def end_session(
    http: httpx.Client,
    provider: LocalOidcProvider,
    *,
    id_token_hint: str | None = None,
    client_id: str | None = None,
    post_logout_redirect_uri: str | None = None,
    state: str | None = None,
) -> httpx.Response:
    """RP-initiated logout with the session cookies in `http`; return the final redirect."""
    params = {
        "id_token_hint": id_token_hint,
        "client_id": client_id,
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "state": state,
    }
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return logout_confirm(http, http.get(f"{provider.end_session_endpoint}?{query}"))


def _jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a JWT, NOT verified (for nonce checks only)."""
    payload: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return payload


def pkce_pair() -> tuple[str, str]:
    """A PKCE code_verifier and its S256 code_challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


def authorization_code_tokens(
    http: httpx.Client,
    provider: LocalOidcProvider,
    client: OidcClient,
    username: str,
    password: str,
    *,
    scope: str = DEFAULT_SCOPE,
    redirect_uri: str | None = None,
    prompt: str | None = "login",
    extra_params: Mapping[str, str] | None = None,
    dpop: DpopKey | None = None,
) -> dict[str, Any]:
    """Run the whole code flow (PKCE, state, nonce) and return the token endpoint's JSON.
    With `dpop`, the token request carries a DPoP proof, so the access token is bound to that
    key (`token_type` DPoP, `cnf.jkt`), as the Onyxia web gets them.

    The result has `access_token` (JWT), `id_token`, `refresh_token`, `expires_in`, `scope`.
    `http` must not follow redirects; it keeps the provider's session cookies. `prompt="login"`
    (the default) forces the login form even when `http` already holds a session, so the tokens
    are always `username`'s; pass `prompt=None` to reuse the session (SSO). For `offline_access`
    oidc-provider wants `prompt="consent"` (or "login consent").
    """
    redirect = redirect_uri or client.redirect_uris[0]
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": redirect,
            "scope": scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **({"prompt": prompt} if prompt else {}),
            **(extra_params or {}),
        }
    )
    resp = login(http, f"{provider.authorization_endpoint}?{query}", username, password)
    location = resp.headers["location"]
    params = parse_qs(urlsplit(location).query)
    if "error" in params:
        raise OidcLoginError(f"authorization failed: {location}")
    if params.get("state") != [state]:
        raise OidcLoginError(f"state not round-tripped: {location}")
    token_resp = http.post(
        provider.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        auth=(client.client_id, client.client_secret),
        headers={"DPoP": dpop.proof("POST", provider.token_endpoint)} if dpop else None,
    )
    if token_resp.status_code != 200:
        raise OidcLoginError(f"token exchange failed: {_page_text(token_resp)}")
    tokens: dict[str, Any] = token_resp.json()
    if "id_token" in tokens and _jwt_payload(tokens["id_token"]).get("nonce") != nonce:
        raise OidcLoginError("nonce not round-tripped in the ID token")
    return tokens


def refresh_tokens(
    http: httpx.Client, provider: LocalOidcProvider, client: OidcClient, refresh_token: str
) -> dict[str, Any]:
    """Use a refresh token (refresh_token grant); return the token endpoint's JSON."""
    resp = http.post(
        provider.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client.client_id, client.client_secret),
    )
    if resp.status_code != 200:
        raise OidcLoginError(f"refresh failed: {_page_text(resp)}")
    tokens: dict[str, Any] = resp.json()
    return tokens
