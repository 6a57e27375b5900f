"""My services (cards, quota gauges, saved configurations) and one service's page."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from onyxia_py.api import saved as saved_api
from onyxia_py.api import services as services_api
from onyxia_py.api import ui_support
from onyxia_py.api.deps import (
    BootstrapDep,
    CacheDep,
    KubeDep,
    LaunchContextDep,
    Reader,
    SavedDep,
    ServicesDep,
    SettingsDep,
    TrackerDep,
)
from onyxia_py.catalog.launch import project_password
from onyxia_py.ui.form import to_yaml
from onyxia_py.ui.rendering import PageRoute, page_for, render

router = APIRouter(include_in_schema=False, route_class=PageRoute)

# The listing's statuses (docs/services.md) and how they look.
TONES = {
    "running": "ok",
    "starting": "busy",
    "suspended": "off",
    "failed": "bad",
    "deleting": "busy",
}


@dataclass(frozen=True)
class Status:
    """A service's state in a user's words, and the style it gets."""

    label: str
    tone: str  # ok, busy, off, bad

    @classmethod
    def of(cls, status: str) -> Status:
        """From the API's status."""
        return cls(status.capitalize() or "Unknown", TONES.get(status, "busy"))


@dataclass(frozen=True)
class ServiceCard:
    """A service as its card on My services shows it."""

    service: services_api.ServiceOut
    status: Status
    mine: bool


@router.get("/services", response_class=HTMLResponse)
async def my_services(
    request: Request,
    principal: Reader,
    settings: SettingsDep,
    bootstrap: BootstrapDep,
    launch_context: LaunchContextDep,
    cache: CacheDep,
    tracker: TrackerDep,
    saved: SavedDep,
    kube: KubeDep,
) -> HTMLResponse:
    """The services of the current project, its quota use and the saved configurations."""
    page = page_for(request, settings, principal)
    assert page.project is not None
    project = page.project
    listed = await services_api.list_services(
        project.id, principal, settings, bootstrap, cache, tracker
    )
    cards = [
        ServiceCard(service=s, status=Status.of(s.status), mine=s.owner == principal.username)
        for s in sorted(listed, key=lambda s: s.created, reverse=True)
    ]
    as_user = bootstrap.impersonation(principal.identity)
    return render(
        request,
        page,
        "services.html",
        section="services",
        title="My services",
        cards=cards,
        quota=await ui_support.project_quota_lines(kube, project, as_user),
        saved=await saved_api.list_saved(project.id, principal, settings, saved),
        password=project_password(project, launch_context.project_secret),
    )


@router.get("/services/{release}", response_class=HTMLResponse)
async def service_page(
    request: Request,
    release: str,
    principal: Reader,
    settings: SettingsDep,
    launch_context: LaunchContextDep,
    services: ServicesDep,
    cache: CacheDep,
    tracker: TrackerDep,
) -> HTMLResponse:
    """Status, pods and containers, logs, events and values (secrets masked) of one service."""
    page = page_for(request, settings, principal)
    assert page.project is not None
    project = page.project
    detail = await services_api.get_service(
        project.id, release, principal, settings, services, cache, tracker
    )
    containers = [(p.name, c.name) for p in detail.pods for c in p.containers]
    return render(
        request,
        page,
        "service.html",
        section="services",
        title=detail.friendly_name or detail.id,
        service=detail,
        status=Status.of(detail.status),
        containers=containers,
        values_yaml=to_yaml(detail.values),
        mine=detail.owner == principal.username,
        password=project_password(project, launch_context.project_secret),
    )
