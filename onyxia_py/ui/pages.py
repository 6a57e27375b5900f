"""HTML pages. Templates and static files live in the repository's `web/` folder.

`router` gathers every page (app.py includes it); `WEB_DIR` is where the static files are."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from onyxia_py.api.deps import AccountsDep, SettingsDep
from onyxia_py.ui import account, admin, catalog, launcher, services
from onyxia_py.ui.rendering import WEB_DIR, PageRoute, optional_principal, page_for, render

__all__ = ["WEB_DIR", "router"]

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, settings: SettingsDep, accounts: AccountsDep) -> HTMLResponse:
    """The landing page: what the platform is, and how to log in (or where to go next)."""
    principal = await optional_principal(request, settings, accounts)
    page = page_for(request, settings, principal)
    return render(request, page, "home.html", section="home")


for module in (catalog, launcher, services, account, admin):
    router.include_router(module.router)
