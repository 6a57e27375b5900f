"""Administration pages (admin role): catalogues, every service, quotas, the audit log, GPUs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from onyxia_py.accounts.models import Principal
from onyxia_py.api import admin as admin_api
from onyxia_py.api import admin_catalogs as admin_catalogs_api
from onyxia_py.api import gpus as gpus_api
from onyxia_py.api import ui_support
from onyxia_py.api.deps import Admin, AuditDep, CatalogOriginsDep, CatalogsDep, KubeDep, SettingsDep
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.errors import NotFound
from onyxia_py.settings import Settings
from onyxia_py.ui.form import to_yaml
from onyxia_py.ui.rendering import PageRoute, page_for, render

router = APIRouter(prefix="/admin", include_in_schema=False, route_class=PageRoute)

# The catalogue form's own inputs; every other field of a definition goes to its YAML box.
FORM_FIELDS = (
    "id",
    "name",
    "description",
    "location",
    "status",
    "highlightedCharts",
    "excludedCharts",
    "multipleServicesMode",
    "maxNumberOfVersions",
    "skipTlsVerify",
    "visible",
    "username",
    "password",
    "type",
)
AUDIT_LIMITS = (50, 100, 200, 500, 1000)


def _page(
    request: Request,
    admin: Principal,
    settings: Settings,
    section: str,
    *,
    template: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """An administration page under the tab `section` (`admin/<section>.html` by default)."""
    return render(
        request,
        page_for(request, settings, admin),
        f"admin/{template or section}.html",
        section="admin",
        admin_section=section,
        **context,
    )


@router.get("", response_class=HTMLResponse)
async def admin_home(_admin: Admin) -> RedirectResponse:
    """The first administration page."""
    return RedirectResponse("/admin/catalogs", 303)


@router.get("/catalogs", response_class=HTMLResponse)
async def catalogs(
    request: Request,
    admin: Admin,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    catalog_origins: CatalogOriginsDep,
) -> HTMLResponse:
    """Every catalogue with its load status; refresh, add, change, remove."""
    return _page(
        request,
        admin,
        settings,
        "catalogs",
        title="Catalogues",
        catalogs=await admin_catalogs_api.list_catalogs(admin, catalogs, catalog_origins),
    )


def _extras(definition: dict[str, Any]) -> str:
    """The definition's fields the form has no input for, as YAML (defaults left out)."""
    defaults = CatalogSpec(id="x", name="x", location="x").model_dump(mode="json", by_alias=True)
    rest = {
        k: v
        for k, v in definition.items()
        if k not in FORM_FIELDS and v != defaults.get(k) and v is not None
    }
    for key in ("name", "description"):
        if isinstance(definition.get(key), dict):
            rest[key] = definition[key]  # one text per language: kept as YAML
    return to_yaml(rest) if rest else ""


@router.get("/catalogs/new", response_class=HTMLResponse)
async def new_catalog(request: Request, admin: Admin, settings: SettingsDep) -> HTMLResponse:
    """The form to add a catalogue."""
    return _page(
        request,
        admin,
        settings,
        "catalogs",
        template="catalog_form",
        title="Add a catalogue",
        definition={"status": "PROD", "multipleServicesMode": "latest", "visible": {}},
        extras="",
        has_password=False,
        creating=True,
    )


@router.get("/catalogs/{catalog_id}/edit", response_class=HTMLResponse)
async def edit_catalog(
    request: Request,
    catalog_id: str,
    admin: Admin,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    catalog_origins: CatalogOriginsDep,
) -> HTMLResponse:
    """The form to change a catalogue stored in the database."""
    found = next(
        (
            c
            for c in await admin_catalogs_api.list_catalogs(admin, catalogs, catalog_origins)
            if c.id == catalog_id
        ),
        None,
    )
    if found is None:
        raise NotFound(f"no catalogue {catalog_id!r}")
    return _page(
        request,
        admin,
        settings,
        "catalogs",
        template="catalog_form",
        title=f"Change {catalog_id}",
        definition=found.definition,
        extras=_extras(found.definition),
        has_password=found.has_password,
        creating=False,
        file_based=found.origin != "database",
    )


@router.get("/services", response_class=HTMLResponse)
async def services(request: Request, admin: Admin, settings: SettingsDep) -> HTMLResponse:
    """Every service of every project (the table is filled by the page's script)."""
    return _page(
        request,
        admin,
        settings,
        "services",
        title="All services",
    )


@router.get("/quotas", response_class=HTMLResponse)
async def quotas(
    request: Request, admin: Admin, settings: SettingsDep, kube: KubeDep
) -> HTMLResponse:
    """Each project's quota use, fullest first."""
    return _page(
        request,
        admin,
        settings,
        "quotas",
        title="Quotas",
        projects=await ui_support.admin_quotas(admin, kube),
    )


Filter = Annotated[str, Query(max_length=255)]


@router.get("/audit", response_class=HTMLResponse)
async def audit(
    request: Request,
    admin: Admin,
    settings: SettingsDep,
    audit_log: AuditDep,
    actor: Filter = "",
    action: Filter = "",
    target: Filter = "",
    outcome: Filter = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HTMLResponse:
    """The audit log, newest first, filtered by actor, action (prefix), target and outcome."""
    shown = await admin_api.audit(
        admin,
        audit_log,
        limit=limit,
        actor=actor.strip() or None,
        action=action.strip() or None,
        target=target.strip() or None,
        outcome=outcome.strip() or None,
    )
    return _page(
        request,
        admin,
        settings,
        "audit",
        title="Audit log",
        events=shown,
        filters={"actor": actor, "action": action, "target": target, "outcome": outcome},
        limit=limit,
        limits=AUDIT_LIMITS,
    )


@router.get("/gpus", response_class=HTMLResponse)
async def gpus(
    request: Request, admin: Admin, settings: SettingsDep, kube: KubeDep
) -> HTMLResponse:
    """GPUs per product: capacity, allocated, free (services holding them: the script)."""
    return _page(
        request,
        admin,
        settings,
        "gpus",
        title="GPUs",
        gpus=await gpus_api.gpus(admin, kube),
    )
