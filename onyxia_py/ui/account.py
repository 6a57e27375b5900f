"""The account page (profile, groups, projects, API tokens, kubeconfig) and the Files page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from onyxia_py.api import me as me_api
from onyxia_py.api.deps import PlatformDep, Reader
from onyxia_py.ui.rendering import PageRoute, page_for, render, s3_available

router = APIRouter(include_in_schema=False, route_class=PageRoute)

KUBECONFIG_PATH = "/api/me/kubeconfig"


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, principal: Reader, platform: PlatformDep) -> HTMLResponse:
    """Who the caller is, their groups and projects, their API tokens."""
    page = page_for(request, platform, principal)
    settings = platform.settings.auth
    return render(
        request,
        page,
        "account.html",
        section="account",
        title="My account",
        me=await me_api.me(principal, platform),
        tokens=await me_api.list_tokens(principal, platform),
        token_days=settings.api_token_default_days,
        token_max_days=settings.api_token_max_days,
        kubeconfig_url=KUBECONFIG_PATH if platform.settings.kubernetes.public_url else None,
    )


@router.get("/files", response_class=HTMLResponse)
async def files(request: Request, principal: Reader, platform: PlatformDep) -> HTMLResponse:
    """The S3 file browser (until S3 is configured: what is missing)."""
    page = page_for(request, platform, principal)
    return render(
        request,
        page,
        "files.html",
        section="files",
        title="My files",
        configured=s3_available(request, platform),
    )
