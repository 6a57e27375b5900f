"""Catalogues, their charts and launch forms, as the caller may see them."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Body, Header, Path, Query, Response
from pydantic import BaseModel, Field

from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import (
    CatalogsDep,
    LaunchContextDep,
    Reader,
    ServiceLauncherDep,
    SettingsDep,
)
from onyxia_py.api.problems import problems
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.icons import ICON_TYPES, Icon
from onyxia_py.catalog.launch import LaunchRequest, prepare_form
from onyxia_py.catalog.models import Chart, LoadedCatalog
from onyxia_py.errors import Forbidden, NotFound
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.settings import Settings

router = APIRouter(prefix="/api/catalogs", tags=["catalogues"], responses=problems(404))

CatalogId = Annotated[str, Path(max_length=63)]
ChartName = Annotated[str, Path(max_length=253)]
ProjectQuery = Annotated[
    str | None, Query(max_length=63, description="Project id; default: the personal project.")
]
LangQuery = Annotated[str | None, Query(max_length=8, description="Language of texts.")]


class ChartVersionOut(BaseModel):
    """One offered version of a chart."""

    version: str
    app_version: str
    description: str
    created: str


class ChartOut(BaseModel):
    """A chart of a catalogue."""

    name: str
    description: str
    icon: str = Field(description="The icon as the chart declares it (often another site's).")
    icon_url: str = Field(
        description="The icon from this server (same origin), or empty when it has none."
    )
    home: str
    keywords: list[str]
    highlighted: bool
    latest_version: str
    versions: list[ChartVersionOut]

    @classmethod
    def of(cls, chart: Chart, catalog_id: str, project: str | None = None) -> ChartOut:
        """From the domain chart (`project`: the one its icon URL is checked against)."""
        latest = chart.latest
        return cls(
            name=chart.name,
            description=latest.description,
            icon=latest.icon,
            icon_url=icon_url(catalog_id, chart.name, project) if latest.icon.strip() else "",
            home=latest.home,
            keywords=list(latest.keywords),
            highlighted=chart.highlighted,
            latest_version=latest.version,
            versions=[
                ChartVersionOut(
                    version=v.version,
                    app_version=v.app_version,
                    description=v.description,
                    created=v.created,
                )
                for v in chart.versions
            ],
        )


class CatalogOut(BaseModel):
    """A catalogue as users see it (never its credentials or restrictions)."""

    id: str
    name: str
    description: str
    status: str
    highlighted_charts: list[str]
    chart_count: int
    loaded_at: datetime

    @classmethod
    def of(cls, catalog: LoadedCatalog, lang: str | None) -> CatalogOut:
        """From the domain catalogue."""
        spec = catalog.spec
        return cls(
            id=spec.id,
            name=spec.text(spec.name, lang),
            description=spec.text(spec.description, lang),
            status=spec.status,
            highlighted_charts=list(spec.highlighted_charts),
            chart_count=len(catalog.charts),
            loaded_at=catalog.loaded_at,
        )


class CatalogDetailOut(CatalogOut):
    """A catalogue with its charts, highlighted first."""

    charts: list[ChartOut]


class FormOut(BaseModel):
    """What a launch form needs: the resolved schema with computed defaults."""

    catalog: str
    chart: str
    version: str
    project: str
    raw_values: bool = Field(description="True when the chart has no schema: edit values freely.")
    schema_: dict[str, Any] | None = Field(alias="schema")
    defaults: dict[str, Any]
    readme: str


class ValidateIn(BaseModel):
    """Values a user wants to launch with (only what they change)."""

    version: str | None = None
    project: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)


class ValidateOut(BaseModel):
    """The values a launch would install, once computed and enforced."""

    catalog: str
    chart: str
    version: str
    project: str
    values: dict[str, Any]


# A page's icons must not hold the browser's few connections to us while another site is slow:
# past this wait the answer is 404 and the fetch goes on, so the next view has it (or its
# remembered failure).
ICON_WAIT_SECONDS = 2.0
_icon_loads: set[asyncio.Task[Icon]] = set()


async def _icon_soon(catalogs: Catalogs, catalog_id: str, chart: str) -> Icon:
    load = asyncio.ensure_future(catalogs.icon(catalog_id, chart))
    try:
        return await asyncio.wait_for(asyncio.shield(load), ICON_WAIT_SECONDS)
    except TimeoutError:
        _icon_loads.add(load)
        load.add_done_callback(_icon_loads.discard)
        load.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise NotFound(f"the icon of {chart!r} is still being fetched") from None


def icon_url(catalog_id: str, chart: str, project: str | None) -> str:
    """The same-origin path of a chart's icon (with the project its visibility depends on)."""
    path = f"/api/catalogs/{quote(catalog_id, safe='')}/charts/{quote(chart, safe='')}/icon"
    return f"{path}?{urlencode({'project': project})}" if project else path


def user_attributes(principal: Principal) -> dict[str, Any]:
    """The claims catalogue restrictions are matched against."""
    identity = principal.identity
    return {
        "sub": identity.subject,
        "preferred_username": identity.username,
        "username": identity.username,
        "email": identity.email,
        "groups": list(identity.groups),
        "roles": list(identity.roles),
    }


def caller_project(principal: Principal, settings: Settings, project_id: str | None) -> Project:
    """The caller's project `project_id` (default: personal); Forbidden if not theirs."""
    projects = projects_of(
        principal.identity.username, principal.identity.groups, settings.projects
    )
    if project_id is None:
        return projects[0]
    for project in projects:
        if project.id == project_id:
            return project
    raise Forbidden(f"you are not a member of project {project_id!r}")


def visible_catalog(
    principal: Principal, catalogs: Catalogs, catalog_id: str, project: Project
) -> LoadedCatalog:
    """A catalogue the caller may use in `project`; NotFound otherwise (never a hint)."""
    for catalog in catalogs.visible(
        user_attributes(principal), group_project=project.group is not None
    ):
        if catalog.spec.id == catalog_id:
            return catalog
    catalogs.spec(catalog_id)  # NotFound for unknown ids, Unavailable if not loaded
    catalogs.loaded(catalog_id)
    raise NotFound(f"no catalogue {catalog_id!r}")


@router.get("", summary="Catalogues I can use")
async def list_catalogs(
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    project: ProjectQuery = None,
    lang: LangQuery = None,
) -> list[CatalogOut]:
    """The loaded catalogues visible to the caller in the project (restrictions applied)."""
    target = caller_project(principal, settings, project)
    return [
        CatalogOut.of(c, lang)
        for c in catalogs.visible(
            user_attributes(principal), group_project=target.group is not None
        )
    ]


@router.get("/{catalog_id}", summary="A catalogue and its charts")
async def get_catalog(
    catalog_id: CatalogId,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    project: ProjectQuery = None,
    lang: LangQuery = None,
) -> CatalogDetailOut:
    """The catalogue's charts, highlighted first, each with its versions newest first."""
    catalog = visible_catalog(
        principal, catalogs, catalog_id, caller_project(principal, settings, project)
    )
    return CatalogDetailOut(
        **CatalogOut.of(catalog, lang).model_dump(),
        charts=[ChartOut.of(c, catalog_id, project) for c in catalog.charts],
    )


@router.get("/{catalog_id}/charts/{chart}", summary="A chart and its versions")
async def get_chart(
    catalog_id: CatalogId,
    chart: ChartName,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    project: ProjectQuery = None,
) -> ChartOut:
    """One chart of a catalogue."""
    catalog = visible_catalog(
        principal, catalogs, catalog_id, caller_project(principal, settings, project)
    )
    found = catalog.chart(chart)
    if found is None:
        raise NotFound(f"catalogue {catalog_id!r} has no chart {chart!r}")
    return ChartOut.of(found, catalog_id, project)


# An SVG opened on its own is a document: it may run no script and load nothing.
_SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@router.get(
    "/{catalog_id}/charts/{chart}/icon",
    summary="The icon of a chart",
    response_class=Response,
    responses={
        200: {"content": {t: {} for t in ICON_TYPES}},
        304: {"description": "Unchanged: the ETag sent in If-None-Match still holds"},
    },
)
async def chart_icon(
    catalog_id: CatalogId,
    chart: ChartName,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    project: ProjectQuery = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The icon of the chart's newest offered version, from this server (pages may show no
    other site's images): PNG, JPEG, GIF, WebP or SVG, at most 256 KiB; 404 when the chart has
    none or it cannot be fetched."""
    visible_catalog(principal, catalogs, catalog_id, caller_project(principal, settings, project))
    icon = await _icon_soon(catalogs, catalog_id, chart)
    etag = f'"{hashlib.sha256(icon.data).hexdigest()[:32]}"'
    headers = {
        "Cache-Control": "private, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "ETag": etag,
    }
    if icon.content_type == "image/svg+xml":
        headers["Content-Security-Policy"] = _SVG_POLICY
    if if_none_match is not None and etag in if_none_match:
        return Response(status_code=304, headers=headers)
    return Response(icon.data, media_type=icon.content_type, headers=headers)


@router.get("/{catalog_id}/charts/{chart}/form", summary="The launch form of a chart")
async def launch_form(
    catalog_id: CatalogId,
    chart: ChartName,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launch_context: LaunchContextDep,
    version: Annotated[str | None, Query(max_length=64)] = None,
    project: ProjectQuery = None,
) -> FormOut:
    """The schema resolved for the caller's roles, with defaults computed on the server."""
    target = caller_project(principal, settings, project)
    visible_catalog(principal, catalogs, catalog_id, target)
    form = await prepare_form(
        launch_context, LaunchRequest(principal, target, catalog_id, chart, version)
    )
    return FormOut(
        catalog=catalog_id,
        chart=chart,
        version=form.version,
        project=target.id,
        raw_values=form.form.raw_values,
        schema=form.form.schema,
        defaults=form.form.defaults,
        readme=form.readme,
    )


@router.post("/{catalog_id}/charts/{chart}/validate", summary="Check launch values")
async def validate(
    catalog_id: CatalogId,
    chart: ChartName,
    body: Annotated[ValidateIn, Body()],
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launcher: ServiceLauncherDep,
) -> ValidateOut:
    """The exact values a launch would use, or the problem a launch would get for them: a 422
    naming every refused field, a chart that renders invalid manifests, more GPUs than any node
    offers."""
    target = caller_project(principal, settings, body.project)
    visible_catalog(principal, catalogs, catalog_id, target)
    spec = LaunchSpec(catalog_id, chart, body.version, body.values)
    version, values = await launcher.check(principal, target, spec)
    return ValidateOut(
        catalog=catalog_id, chart=chart, version=version, project=target.id, values=values
    )
