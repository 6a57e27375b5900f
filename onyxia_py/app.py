"""The composition root: the only place that builds the platform's services and wires them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from onyxia_py.accounts.core import Accounts
from onyxia_py.api import admin, auth, me, ops
from onyxia_py.api.deps import Platform
from onyxia_py.api.middleware import Metrics, RequestContextMiddleware, security_headers
from onyxia_py.api.problems import install_problem_handlers
from onyxia_py.auth import Cipher, OidcProvider, ProviderConfig, derive_key
from onyxia_py.db import AuditLog, Database, SessionStore, Users, upgrade
from onyxia_py.db.sessions import ApiTokenStore
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.kube import KubeClient
from onyxia_py.settings import AuthMode, AuthSettings, Settings
from onyxia_py.ui import pages

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def build_provider(settings: AuthSettings) -> OidcProvider | None:
    """The OpenID Provider client, in auth mode oidc."""
    if settings.mode is not AuthMode.OIDC:
        return None
    assert settings.issuer_url
    assert settings.client_id
    return OidcProvider(
        ProviderConfig(
            issuer=settings.issuer_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value()
            if settings.client_secret
            else None,
            audience=settings.audience or settings.client_id,
            scopes=tuple(settings.scopes),
            algorithms=frozenset(settings.algorithms),
            leeway_seconds=settings.leeway_seconds,
            timeout_seconds=settings.http_timeout_seconds,
            jwks_min_refresh_seconds=settings.jwks_min_refresh_seconds,
        )
    )


def build_cipher(settings: Settings) -> Cipher:
    """Seals provider tokens at rest: operator keys, else a key derived from the session secret."""
    secrets = [k.get_secret_value() for k in settings.auth.token_encryption_keys] or [
        settings.server.session_secret.get_secret_value()
    ]
    return Cipher([derive_key(s, "onyxia-py token sealing") for s in secrets])


def build_platform(settings: Settings) -> Platform:
    """The long-lived services, built from `settings`."""
    db = Database(settings.database)
    users, audit = Users(db), AuditLog(db)
    return Platform(
        settings=settings,
        db=db,
        kube=KubeClient(settings.kubernetes),
        helm=SdkHelmEngine(
            settings.helm,
            kubeconfig=settings.kubernetes.kubeconfig,
            kube_context=settings.kubernetes.context,
        ),
        users=users,
        audit=audit,
        accounts=Accounts(
            settings.auth,
            public_url=settings.server.public_url,
            provider=build_provider(settings.auth),
            cipher=build_cipher(settings),
            users=users,
            sessions=SessionStore(db),
            tokens=ApiTokenStore(db),
            audit=audit,
        ),
    )


def create_app(settings: Settings) -> FastAPI:
    """The onyxia-py web application for `settings`."""
    platform = build_platform(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.database.migrate_on_start:
            log.info("applying database migrations to %s", platform.db.safe_url)
            await upgrade(platform.db.url)
        yield
        if platform.accounts.provider is not None:
            await platform.accounts.provider.close()  # type: ignore[attr-defined]
        await platform.db.close()
        platform.kube.close()

    app = FastAPI(
        title="onyxia-py",
        version=VERSION,
        summary="Self-service data-science platform: Onyxia's control plane in Python.",
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.state.metrics = Metrics()
    issuer = settings.auth.issuer_url if settings.auth.mode is AuthMode.OIDC else None
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        trust_request_id=settings.server.trust_request_id,
        access_log=settings.server.access_log,
        headers=security_headers(
            form_targets=(_origin(issuer),) if issuer else (),
            https=settings.server.public_url.startswith("https://"),
        ),
    )
    install_problem_handlers(app)
    for module in (ops, auth, me, admin, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.WEB_DIR / "static"), name="static")
    return app


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
