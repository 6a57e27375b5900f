"""The account page (profile, groups, projects, API tokens, kubeconfig, S3 credentials) and the
Files page (the S3 bucket browser)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from onyxia_py.accounts.models import Principal
from onyxia_py.api import me as me_api
from onyxia_py.api import s3 as s3_api
from onyxia_py.api.deps import AccountsDep, Reader, SettingsDep, StorageDep
from onyxia_py.storage.models import TokenHint
from onyxia_py.ui.rendering import Page, PageRoute, page_for, render, s3_available

router = APIRouter(include_in_schema=False, route_class=PageRoute)

KUBECONFIG_PATH = "/api/me/kubeconfig"
# Lifetimes offered for share links (seconds, label); longer than the operator allows are left out.
LINK_LIFETIMES = (
    (900, "15 minutes"),
    (3600, "1 hour"),
    (12 * 3600, "12 hours"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "7 days"),
)
DEFAULT_LINK_SECONDS = 3600


def duration_text(seconds: int) -> str:
    """ "12 hours", "15 minutes", "90 seconds": a lifetime in the largest whole unit."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


async def s3_status(
    request: Request, settings: SettingsDep, storage: StorageDep, principal: Principal, page: Page
) -> s3_api.StatusOut | None:
    """The project's S3 status as the API gives it (no S3 call), or None when S3 is off."""
    if not s3_available(request, settings) or page.project is None:
        return None
    caller = s3_api.Caller(principal, page.project, TokenHint(session_id=principal.session_id))
    return await s3_api.status(caller, settings, storage)


@router.get("/account", response_class=HTMLResponse)
async def account(
    request: Request,
    principal: Reader,
    settings: SettingsDep,
    accounts: AccountsDep,
    storage: StorageDep,
) -> HTMLResponse:
    """Who the caller is, their groups and projects, their API tokens, their S3 credentials."""
    page = page_for(request, settings, principal)
    auth = settings.auth
    return render(
        request,
        page,
        "account.html",
        section="account",
        title="My account",
        me=await me_api.me(principal, settings),
        tokens=await me_api.list_tokens(principal, accounts),
        token_days=auth.api_token_default_days,
        token_max_days=auth.api_token_max_days,
        kubeconfig_url=KUBECONFIG_PATH if settings.kubernetes.public_url else None,
        s3=await s3_status(request, settings, storage, principal, page),
        credentials_life=duration_text(settings.s3.duration_seconds),
    )


@router.get("/files", response_class=HTMLResponse)
async def files(
    request: Request, principal: Reader, settings: SettingsDep, storage: StorageDep
) -> HTMLResponse:
    """The S3 file browser of the current project's bucket (until S3 is configured: what is
    missing). The folder shown comes from `?prefix=`, read by the page's script."""
    page = page_for(request, settings, principal)
    most = settings.s3.presign_max_seconds
    lifetimes = [(s, label) for s, label in LINK_LIFETIMES if s <= most] or [
        (most, duration_text(most))
    ]
    return render(
        request,
        page,
        "files.html",
        section="files",
        title="My files",
        configured=s3_available(request, settings),
        s3=await s3_status(request, settings, storage, principal, page),
        link_lifetimes=lifetimes,
        default_link_seconds=min(DEFAULT_LINK_SECONDS, lifetimes[-1][0]),
        credentials_life=duration_text(settings.s3.duration_seconds),
    )
