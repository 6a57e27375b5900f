"""CORS for Onyxia's API only, so that an Onyxia web served from another origin may call it.

The web sends bearer (or DPoP) tokens, never cookies, so credentials are not allowed: a page of
another origin can never ride on a user's session with our own pages. Our own API and pages get
no CORS headers at all, even under the same `/api` prefix: only the paths of Onyxia's routes do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

METHODS = ("GET", "POST", "PUT", "DELETE")
# What the web sends beyond the CORS-safelisted headers.
HEADERS = ("Authorization", "Content-Type", "DPoP", "ONYXIA-PROJECT", "ONYXIA-REGION")
# What the web may read of our answers beyond the safelisted ones.
EXPOSED = ("WWW-Authenticate", "DPoP-Nonce", "X-Request-ID")
MAX_AGE_SECONDS = 600


class CompatCors:
    """CORS middleware applied to the requests whose path is one of Onyxia's routes."""

    def __init__(self, app: ASGIApp, paths: Sequence[re.Pattern[str]], origins: list[str]) -> None:
        self.app = app
        self.paths = tuple(paths)
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSED,
            max_age=MAX_AGE_SECONDS,
        )

    def covers(self, path: str) -> bool:
        """True when `path` is one of Onyxia's routes."""
        return any(pattern.match(path) for pattern in self.paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.covers(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def route_paths(router: APIRouter) -> list[re.Pattern[str]]:
    """The path patterns of a router's routes (prefix included)."""
    return [route.path_regex for route in router.routes if isinstance(route, APIRoute)]


def install_cors(app: FastAPI, router: APIRouter, origins: list[str]) -> None:
    """Answer CORS requests from `origins` on `router`'s paths; nothing when there are none."""
    if origins:
        app.add_middleware(CompatCors, paths=route_paths(router), origins=list(origins))
