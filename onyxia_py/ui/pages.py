"""HTML pages. Templates and static files live in the repository's `web/` folder."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import CSRF_FIELD, PlatformDep, authenticate
from onyxia_py.errors import Forbidden, Unauthenticated
from onyxia_py.settings import AuthMode

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(include_in_schema=False)


async def _optional_principal(request: Request, platform: PlatformDep) -> Principal | None:
    try:
        return await authenticate(request, platform)
    except (Unauthenticated, Forbidden):
        return None


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, platform: PlatformDep) -> HTMLResponse:
    """The landing page: who is logged in, how to log in or out."""
    principal = await _optional_principal(request, platform)
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "principal": principal,
            "single_user": platform.settings.auth.mode is AuthMode.NONE,
            "csrf_field": CSRF_FIELD,
        },
    )
