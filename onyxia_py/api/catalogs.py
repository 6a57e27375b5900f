"""Catalogues, their charts and launch forms, as the caller may see them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, Field

from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import PlatformDep, Reader
from onyxia_py.catalog.launch import LaunchRequest, prepare_form, prepare_values
from onyxia_py.catalog.models import Chart, LoadedCatalog
from onyxia_py.errors import Forbidden, NotFound
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project

router = APIRouter(prefix="/api/catalogs", tags=["catalogues"])

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
    icon: str
    home: str
    keywords: list[str]
    highlighted: bool
    latest_version: str
    versions: list[ChartVersionOut]

    @classmethod
    def of(cls, chart: Chart) -> ChartOut:
        """From the domain chart."""
        latest = chart.latest
        return cls(
            name=chart.name,
            description=latest.description,
            icon=latest.icon,
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


def caller_project(principal: Principal, platform: PlatformDep, project_id: str | None) -> Project:
    """The caller's project `project_id` (default: personal); Forbidden if not theirs."""
    projects = projects_of(
        principal.identity.username, principal.identity.groups, platform.settings.projects
    )
    if project_id is None:
        return projects[0]
    for project in projects:
        if project.id == project_id:
            return project
    raise Forbidden(f"you are not a member of project {project_id!r}")


def visible_catalog(
    principal: Principal, platform: PlatformDep, catalog_id: str, project: Project
) -> LoadedCatalog:
    """A catalogue the caller may use in `project`; NotFound otherwise (never a hint)."""
    for catalog in platform.catalogs.visible(
        user_attributes(principal), group_project=project.group is not None
    ):
        if catalog.spec.id == catalog_id:
            return catalog
    platform.catalogs.spec(catalog_id)  # NotFound for unknown ids, Unavailable if not loaded
    platform.catalogs.loaded(catalog_id)
    raise NotFound(f"no catalogue {catalog_id!r}")


@router.get("", summary="Catalogues I can use")
async def list_catalogs(
    principal: Reader, platform: PlatformDep, project: ProjectQuery = None, lang: LangQuery = None
) -> list[CatalogOut]:
    """The loaded catalogues visible to the caller in the project (restrictions applied)."""
    target = caller_project(principal, platform, project)
    return [
        CatalogOut.of(c, lang)
        for c in platform.catalogs.visible(
            user_attributes(principal), group_project=target.group is not None
        )
    ]


@router.get("/{catalog_id}", summary="A catalogue and its charts")
async def get_catalog(
    catalog_id: CatalogId,
    principal: Reader,
    platform: PlatformDep,
    project: ProjectQuery = None,
    lang: LangQuery = None,
) -> CatalogDetailOut:
    """The catalogue's charts, highlighted first, each with its versions newest first."""
    catalog = visible_catalog(
        principal, platform, catalog_id, caller_project(principal, platform, project)
    )
    return CatalogDetailOut(
        **CatalogOut.of(catalog, lang).model_dump(),
        charts=[ChartOut.of(c) for c in catalog.charts],
    )


@router.get("/{catalog_id}/charts/{chart}", summary="A chart and its versions")
async def get_chart(
    catalog_id: CatalogId,
    chart: ChartName,
    principal: Reader,
    platform: PlatformDep,
    project: ProjectQuery = None,
) -> ChartOut:
    """One chart of a catalogue."""
    catalog = visible_catalog(
        principal, platform, catalog_id, caller_project(principal, platform, project)
    )
    found = catalog.chart(chart)
    if found is None:
        raise NotFound(f"catalogue {catalog_id!r} has no chart {chart!r}")
    return ChartOut.of(found)


@router.get("/{catalog_id}/charts/{chart}/form", summary="The launch form of a chart")
async def launch_form(
    catalog_id: CatalogId,
    chart: ChartName,
    principal: Reader,
    platform: PlatformDep,
    version: Annotated[str | None, Query(max_length=64)] = None,
    project: ProjectQuery = None,
) -> FormOut:
    """The schema resolved for the caller's roles, with defaults computed on the server."""
    target = caller_project(principal, platform, project)
    visible_catalog(principal, platform, catalog_id, target)
    form = await prepare_form(
        platform.launch_context, LaunchRequest(principal, target, catalog_id, chart, version)
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
    platform: PlatformDep,
) -> ValidateOut:
    """The exact values a launch would use, or a 422 problem naming every refused field."""
    target = caller_project(principal, platform, body.project)
    visible_catalog(principal, platform, catalog_id, target)
    request = LaunchRequest(principal, target, catalog_id, chart, body.version)
    version, values = await prepare_values(platform.launch_context, request, body.values)
    return ValidateOut(
        catalog=catalog_id, chart=chart, version=version, project=target.id, values=values
    )
