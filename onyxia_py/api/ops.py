"""Operational endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from onyxia_py.api.deps import CatalogsDep, DbDep, KubeDep, SettingsDep
from onyxia_py.api.problems import problem_response
from onyxia_py.errors import OnyxiaError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Answers as long as the process serves requests; checks nothing else."""
    return {"status": "ok"}


async def _check(probe: Awaitable[Any], limit_seconds: float) -> str:
    try:
        async with asyncio.timeout(limit_seconds):
            await probe
    except TimeoutError:
        return f"no answer within {limit_seconds:g}s"
    except OnyxiaError as exc:
        return exc.detail
    return "ok"


@router.get(
    "/readyz",
    summary="The database and Kubernetes are reachable and catalogues loaded once",
    responses={503: {"description": "A dependency is down (problem+json naming it)"}},
)
async def readyz(
    request: Request, settings: SettingsDep, db: DbDep, kube: KubeDep, catalogs: CatalogsDep
) -> Response:
    """200 when every dependency answers and the catalogues loaded once; else a 503 problem
    with each failing check's reason."""
    timeout = settings.kubernetes.readiness_timeout_seconds
    database, kubernetes = await asyncio.gather(
        _check(db.ping(), timeout), _check(kube.version(), timeout)
    )
    loaded = "ok" if catalogs.first_load.is_set() else "first load in progress"
    checks = {"database": database, "kubernetes": kubernetes, "catalogs": loaded}
    failing = {name: reason for name, reason in checks.items() if reason != "ok"}
    if not failing:
        return JSONResponse({"status": "ready", "checks": checks})
    return problem_response(
        request,
        status=503,
        slug="not-ready",
        title="Not ready",
        detail="; ".join(f"{name}: {reason}" for name, reason in failing.items()),
        extensions={"checks": checks},
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Request latency by route and in-flight requests, in the Prometheus text format."""
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
