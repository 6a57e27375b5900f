"""Helpers for integration tests: an app served on a real port, tokens minted for attacks."""

from __future__ import annotations

import base64
import json
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

# authlib installs an "always" filter for its deprecation warnings when first imported; import
# it before our filter so ours wins.
import authlib.deprecate  # noqa: F401
import uvicorn
from fastapi import FastAPI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken


class ServedApp:
    """An ASGI app served by uvicorn in a thread, so redirects between servers are real."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def wait_for_catalogs(get: Callable[[str], Any], base_url: str = "") -> None:
    """Wait until `/readyz` says the catalogues are loaded (they load in the background).

    `get` is `httpx.get` (with the app's `base_url`) or a client's own `get`."""
    for _ in range(200):
        if get(f"{base_url}/readyz").json()["checks"]["catalogs"] == "ok":
            return
        time.sleep(0.1)
    raise AssertionError("the catalogues were not loaded after 20 s")


def mint(
    private_jwk: dict[str, Any],
    claims: dict[str, Any],
    *,
    alg: str = "RS256",
    kid: str | None = None,
) -> str:
    """A JWT signed with `private_jwk` (the provider's key, or an attacker's)."""
    key = JsonWebKey.import_key(private_jwk)
    header = {"alg": alg, "kid": kid or private_jwk.get("kid"), "typ": "JWT"}
    token: bytes = JsonWebToken([alg]).encode(header, claims, key)
    return token.decode("ascii")


def unsigned(claims: dict[str, Any]) -> str:
    """A JWT with `alg: none` and no signature."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def tamper(token: str) -> str:
    """`token` with its payload changed and the signature kept."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["preferred_username"] = "mallory"
    raw = json.dumps(data, separators=(",", ":")).encode()
    forged = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"
