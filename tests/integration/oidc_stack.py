"""A real OpenID Provider and an app that trusts it, both on real ports, for integration tests."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import SecretStr

from devtools.dpop import DpopKey
from devtools.localoidc import LocalOidcProvider, OidcClient, OidcUser
from devtools.oidcflows import authorization_code_tokens, login
from devtools.ports import free_port
from onyxia_py.app import create_app
from onyxia_py.settings import (
    AuthMode,
    AuthSettings,
    DatabaseSettings,
    KubernetesSettings,
    ServerSettings,
    Settings,
)

from ..support import ServedApp


@dataclass
class Stack:
    """A provider and an app that trusts it, both on real ports."""

    provider: LocalOidcProvider
    client: OidcClient
    app: ServedApp
    settings: Settings

    @property
    def url(self) -> str:
        return self.app.url

    def restart(self) -> None:
        """Stop the app and start a fresh process-worth of it (new objects, empty caches) on
        the same port and database, as a restarted server would be."""
        port = int(self.url.rsplit(":", 1)[1])
        self.app.__exit__(None, None, None)
        self.app = ServedApp(create_app(self.settings), port).__enter__()

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def tokens(self, username: str, password: str, dpop: DpopKey | None = None) -> dict[str, Any]:
        """Tokens from the code flow (DPoP-bound to `dpop`'s key when given)."""
        with httpx.Client(timeout=10) as http:
            return authorization_code_tokens(
                http, self.provider, self.client, username, password, dpop=dpop
            )


@contextmanager
def stack(
    tmp_path: Path,
    *,
    access_token_ttl: int = 300,
    settings: dict[str, Any] | None = None,
    users: list[OidcUser] | None = None,
    **auth: Any,
) -> Iterator[Stack]:
    port = free_port()
    client = OidcClient(
        client_id="onyxia",
        redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"],
        post_logout_redirect_uris=[f"http://127.0.0.1:{port}/"],
    )
    with LocalOidcProvider([client], users, access_token_ttl=access_token_ttl) as provider:
        extra = dict(settings or {})
        configured = Settings(
            # No cluster unless given: never bootstrap projects wherever ~/.kube/config points.
            kubernetes=extra.pop("kubernetes", KubernetesSettings(kubeconfig=tmp_path / "none")),
            server=ServerSettings(
                port=port,
                public_url=f"http://127.0.0.1:{port}",
                session_secret=SecretStr(secrets.token_urlsafe(32)),
            ),
            database=extra.pop(
                "database",
                DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / f'auth-{port}.db'}"),
            ),
            auth=AuthSettings(
                mode=AuthMode.OIDC,
                issuer_url=provider.issuer,
                client_id=client.client_id,
                client_secret=SecretStr(client.client_secret),
                audience="onyxia",
                scopes=["openid", "profile", "email", "groups", "roles"],
                jwks_min_refresh_seconds=0,
                **auth,
            ),
            **extra,
        )
        running = Stack(
            provider, client, ServedApp(create_app(configured), port).__enter__(), configured
        )
        try:
            yield running
        finally:
            running.app.__exit__(None, None, None)


def browser_login(
    s: Stack, username: str, password: str, next_path: str = "/api/me"
) -> tuple[httpx.Client, httpx.Response]:
    """Walk the real code flow like a browser; return the client and the final redirect."""
    http = s.http()
    start = http.get("/auth/login", params={"next": next_path})
    assert start.status_code == 302
    assert start.headers["location"].startswith(s.provider.issuer)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"][0]
    assert query["nonce"][0]
    back = login(http, start.headers["location"], username, password)
    callback = back.headers["location"]
    assert callback.startswith(f"{s.url}/auth/callback?")
    return http, http.get(callback)


def csrf(http: httpx.Client) -> dict[str, str]:
    token = http.get("/auth/session").json()["csrf_token"]
    return {"X-CSRF-Token": token}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def launch_followed(
    http: httpx.Client,
    project: str,
    chart: str,
    values: dict[str, Any] | None = None,
    *,
    timeout: float = 120,
    catalog: str = "ide",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Launch `chart` as the session of `http` and follow its events to the end; the 202
    answer and the events."""
    answer = http.post(
        f"/api/projects/{project}/services",
        json={"catalog": catalog, "chart": chart, "values": values or {}},
        headers=csrf(http),
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    events = []
    with http.stream("GET", accepted["events_url"], timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return accepted, events
