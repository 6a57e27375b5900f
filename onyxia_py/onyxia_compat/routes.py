"""The routes of Onyxia's REST API served so far (docs/onyxia-web.md lists what is not yet).

`/public/*` answers without credentials, as Onyxia's does; every other route takes the bearer
tokens our API takes (`api.deps.Reader`). Errors are our RFC 7807 problems, whose members are
a superset of the Spring `ProblemDetail` Onyxia answers with (`type`, `title`, `status`,
`detail`, `instance`); the web reads only their status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from onyxia_py.api.catalogs import user_attributes
from onyxia_py.api.deps import Platform, PlatformDep, Reader
from onyxia_py.api.problems import problem_response, problems
from onyxia_py.catalog.models import ChartVersion, LoadedCatalog
from onyxia_py.errors import Forbidden, NotFound, OnyxiaError
from onyxia_py.onyxia_compat import regions, services
from onyxia_py.onyxia_compat.deps import OnyxiaProject, onyxia_project
from onyxia_py.onyxia_compat.mapping import (
    catalog_out,
    catalogs_for,
    chart_out,
    project_out,
    quota_out,
)
from onyxia_py.onyxia_compat.models import (
    CatalogOut,
    CatalogsOut,
    ChartOut,
    HealthOut,
    IpOut,
    QuotaOut,
    Schemas,
    UserInfoOut,
)
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project
from onyxia_py.projects.objects import QUOTA_NAME
from onyxia_py.storage.core import project_bucket

log = logging.getLogger(__name__)

TAG = "onyxia compatibility"

# Every my-lab call names its project (ONYXIA-PROJECT), as Onyxia resolves it on each.
MY_LAB = [Depends(onyxia_project)]

CatalogId = Annotated[str, Path(alias="catalogId", max_length=63)]
ChartName = Annotated[str, Path(alias="chartName", max_length=253)]
RoleQuery = Annotated[
    str | None, Query(max_length=100, description="Resolve the schemas as a user with this role.")
]


def build_router(prefix: str) -> APIRouter:
    """Onyxia's API under `prefix` (e.g. `/api`), tagged apart from our own."""
    router = APIRouter(prefix=prefix, tags=[TAG])
    get = router.get
    get("/public/ip", summary="The caller's IP address")(ip)
    get(
        "/public/healthcheck",
        summary="Every catalogue has loaded once",
        responses={500: {"description": "Some catalogue has not loaded yet (not-ready)"}},
    )(healthcheck)
    get(
        "/public/catalogs", summary="Catalogues open to everyone", response_model_exclude_none=True
    )(public_catalogs)
    get("/public/schemas", summary="The schema registry")(schemas)
    get("/public/schemas/{name:path}", summary="One registry schema", responses=problems(404))(
        schema
    )
    get("/user/info", summary="Who am I, and my projects", response_model_exclude_none=True)(
        user_info
    )
    get(
        "/my-lab/catalogs",
        summary="Catalogues I can use",
        response_model_exclude_none=True,
        dependencies=MY_LAB,
    )(my_catalogs)
    get(
        "/my-lab/catalogs/{catalogId}/charts/{chartName}",
        summary="The offered versions of a chart",
        response_model_exclude_none=True,
        responses=problems(404),
        dependencies=MY_LAB,
    )(chart_versions)
    get(
        "/my-lab/quota", summary="My project's quota", responses=problems(403), dependencies=MY_LAB
    )(quota)
    regions.register(router)
    services.register(router)
    return router


# -- public ------------------------------------------------------------------------------------


async def ip(request: Request) -> IpOut:
    """The address the request came from. Behind a proxy it is the client's, as uvicorn's
    proxy headers give it for trusted proxies (FORWARDED_ALLOW_IPS): a forged X-Forwarded-For
    from anyone else is not believed."""
    return IpOut(ip=request.client.host if request.client else "")


async def healthcheck(request: Request, platform: PlatformDep) -> Response:
    """200 once every catalogue has loaded successfully at least once, else 500 (Onyxia's
    probe rule; our own /readyz also checks the database and Kubernetes, with a 503)."""
    pending = [s.id for s in platform.catalogs.statuses() if s.last_success is None]
    if not pending:
        return Response(HealthOut().model_dump_json(), media_type="application/json")
    return problem_response(
        request,
        status=500,
        slug="not-ready",
        title="Not ready",
        detail="catalogues not loaded yet: " + ", ".join(sorted(pending)),
        extensions={"catalogs": sorted(pending)},
    )


async def public_catalogs(platform: PlatformDep) -> CatalogsOut:
    """The loaded catalogues that have no restriction (restricted ones need a user)."""
    return await _catalogs(platform, catalogs_for(platform.catalogs, {}))


async def schemas(platform: PlatformDep, role: RoleQuery = None) -> Schemas:
    """Every registry schema by key (`ide/resources.json`, ...), as a user with `role` gets
    it (the operator's role override, else their default, else the bundled one)."""
    registry = platform.launch_context.registry
    roles = (role,) if role else ()
    keys: list[str] = registry.keys()
    found = {key: registry.get(key, roles) for key in keys}
    return {key: schema for key, schema in found.items() if schema is not None}


async def schema(
    name: Annotated[str, Path(max_length=200)], platform: PlatformDep, role: RoleQuery = None
) -> dict[str, Any]:
    """One registry schema; nested keys (`ide/resources.json`) are reachable too."""
    found = platform.launch_context.registry.get(name, (role,) if role else ())
    if found is None:
        raise NotFound(f"no schema {name!r}")
    return found


# -- user ----------------------------------------------------------------------------------------


async def user_info(request: Request, principal: Reader, platform: PlatformDep) -> UserInfoOut:
    """The caller and their projects, personal first. `nomComplet` is left out: the platform
    does not map a display-name claim."""
    identity = principal.identity
    settings = platform.settings

    def bucket(project: Project) -> str | None:
        if not settings.s3.enabled:
            return None
        return project_bucket(project, identity.username, settings.projects, settings.s3)

    return UserInfoOut(
        idep=identity.username,
        email=identity.email,
        ip=request.client.host if request.client else "",
        groups=list(identity.groups),
        roles=list(identity.roles),
        projects=[
            project_out(p, identity.username, bucket)
            for p in projects_of(identity.username, identity.groups, settings.projects)
        ],
    )


# -- my-lab --------------------------------------------------------------------------------------


async def my_catalogs(principal: Reader, platform: PlatformDep) -> CatalogsOut:
    """The loaded catalogues the caller's claims satisfy the restrictions of."""
    return await _catalogs(platform, catalogs_for(platform.catalogs, user_attributes(principal)))


async def chart_versions(
    catalog_id: CatalogId, chart_name: ChartName, principal: Reader, platform: PlatformDep
) -> list[ChartOut]:
    """Every offered version of the chart, newest first. Unlike Onyxia, the catalogue's
    restrictions apply here too: one the caller may not use is not found."""
    for catalog in catalogs_for(platform.catalogs, user_attributes(principal)):
        if catalog.spec.id == catalog_id:
            break
    else:
        platform.catalogs.loaded(catalog_id)  # 404 unknown, 503 not loaded yet
        raise NotFound(f"no catalogue {catalog_id!r}")
    chart = catalog.chart(chart_name)
    if chart is None:
        raise NotFound(f"catalogue {catalog_id!r} has no chart {chart_name!r}")
    return list(await asyncio.gather(*(_chart(platform, catalog_id, v) for v in chart.versions)))


async def quota(project: OnyxiaProject, principal: Reader, platform: PlatformDep) -> QuotaOut:
    """The project's ResourceQuota: allowed (`spec`) and used (`usage`) per resource, read as
    the caller; 403 when the platform gives projects no quota (the web then hides quotas)."""
    if not platform.settings.projects.quota_enabled:
        raise Forbidden("this platform gives projects no quota")
    await platform.bootstrap.ensure(project, principal.identity)
    as_user = platform.bootstrap.impersonation(principal.identity)
    try:
        found = await platform.kube.get("ResourceQuota", QUOTA_NAME, project.namespace, as_=as_user)
    except NotFound:
        found = None
    return quota_out(found)


# -- shared --------------------------------------------------------------------------------------


async def _chart(platform: Platform, catalog_id: str, version: ChartVersion) -> ChartOut:
    """A chart version with its default values (from the cached package)."""
    try:
        files = await platform.catalogs.chart_files(catalog_id, version.name, version.version)
    except OnyxiaError as exc:
        log.warning(
            "catalogue %s: no default values for %s %s: %s",
            catalog_id,
            version.name,
            version.version,
            exc.detail,
        )
        return chart_out(version, None)
    return chart_out(version, files.values)


async def _catalogs(platform: Platform, loaded: list[LoadedCatalog]) -> CatalogsOut:
    async def one(catalog: LoadedCatalog) -> CatalogOut:
        charts = await asyncio.gather(
            *(_chart(platform, catalog.spec.id, c.latest) for c in catalog.charts)
        )
        return catalog_out(catalog, {c.name: c for c in charts})

    return CatalogsOut(catalogs=list(await asyncio.gather(*(one(c) for c in loaded))))
