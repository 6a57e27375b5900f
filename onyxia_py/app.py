"""The composition root: the only place that builds the platform's services and wires them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from onyxia_py.api import ops
from onyxia_py.api.deps import Platform
from onyxia_py.api.middleware import Metrics, RequestContextMiddleware
from onyxia_py.api.problems import install_problem_handlers
from onyxia_py.db import AuditLog, Database, Users, upgrade
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.kube import KubeClient
from onyxia_py.settings import Settings

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def build_platform(settings: Settings) -> Platform:
    """The long-lived services, built from `settings`."""
    db = Database(settings.database)
    return Platform(
        settings=settings,
        db=db,
        kube=KubeClient(settings.kubernetes),
        helm=SdkHelmEngine(
            settings.helm,
            kubeconfig=settings.kubernetes.kubeconfig,
            kube_context=settings.kubernetes.context,
        ),
        users=Users(db),
        audit=AuditLog(db),
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
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        trust_request_id=settings.server.trust_request_id,
        access_log=settings.server.access_log,
    )
    install_problem_handlers(app)
    app.include_router(ops.router)
    return app
