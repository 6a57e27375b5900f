"""The launcher: a chart's launch form, generated from the launch-form API's resolved schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from onyxia_py.api import catalogs as catalogs_api
from onyxia_py.api import gpus as gpus_api
from onyxia_py.api import saved as saved_api
from onyxia_py.api.deps import (
    CatalogsDep,
    KubeDep,
    LaunchContextDep,
    Reader,
    SavedDep,
    ServiceLauncherDep,
    SettingsDep,
)
from onyxia_py.catalog.values import merge
from onyxia_py.errors import NotFound
from onyxia_py.quantities import human
from onyxia_py.ui.catalog import card
from onyxia_py.ui.form import flatten, form_fields, to_yaml
from onyxia_py.ui.rendering import PageRoute, page_for, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/launcher/{catalog_id}/{chart}", response_class=HTMLResponse)
async def launcher(
    request: Request,
    catalog_id: str,
    chart: str,
    principal: Reader,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launch_context: LaunchContextDep,
    saved_launches: SavedDep,
    kube: KubeDep,
    launcher: ServiceLauncherDep,
    version: Annotated[str | None, Query(max_length=64)] = None,
    saved: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The form for `chart` (a version, or a saved configuration's values, if asked)."""
    page = page_for(request, settings, principal)
    project = page.project_id
    configuration: saved_api.SavedOut | None = None
    if saved is not None:
        kept = await saved_api.list_saved(project, principal, settings, saved_launches)
        configuration = next((s for s in kept if s.id == saved), None)
        if configuration is None or (configuration.catalog, configuration.chart) != (
            catalog_id,
            chart,
        ):
            raise NotFound(f"no saved configuration {saved} for {chart} in {project}")
        version = version or configuration.version
    info = await catalogs_api.get_chart(
        catalog_id, chart, principal, settings, catalogs, project=project
    )
    form = await catalogs_api.launch_form(
        catalog_id,
        chart,
        principal,
        settings,
        catalogs,
        launch_context,
        version=version,
        project=project,
    )
    overrides: dict[str, Any] = configuration.values if configuration else {}
    fields = form_fields(form.schema_ or {}, overrides) if not form.raw_values else []
    gpus = None
    if any(f.gpu for f in flatten(fields)):
        gpus = await gpus_api.gpus(principal, kube)
    left = await launcher.free_share(principal, page.project) if page.project else {}
    gpu_free, gpu_note = gpu_share(gpus, left.get("requests.nvidia.com/gpu"))
    raw_yaml = to_yaml(merge(form.defaults, overrides)) if form.raw_values else ""
    return render(
        request,
        page,
        "launcher.html",
        section="catalog",
        title=f"Launch {chart}",
        catalog_id=catalog_id,
        chart=info,
        card=card(info),
        form=form,
        fields=fields,
        raw_yaml=raw_yaml,
        gpus=gpus,
        gpu_free=gpu_free,
        gpu_note=gpu_note,
        quota_free={key: human(key, amount) for key, amount in left.items()},
        configuration=configuration,
        friendly_name=configuration.name if configuration else chart,
        shareable=page.project is not None and page.project.group is not None,
    )


def gpu_share(gpus: list[gpus_api.GpuOut] | None, quota_left: Decimal | None) -> tuple[int, str]:
    """GPUs a launch can take now: the cluster's free ones, within what the quota has left;
    and why, when the quota is the smaller."""
    cluster = sum(g.free for g in gpus) if gpus else 0
    if quota_left is None or quota_left >= cluster:
        return cluster, ""
    left = int(quota_left)
    return left, f"your project's quota has {left} left; the cluster has {cluster} free"
