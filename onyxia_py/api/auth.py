"""Browser login and logout: the OpenID Connect code flow, session cookies, CSRF tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from onyxia_py.api.deps import AccountsDep, CurrentUser, SettingsDep, cookie_policy
from onyxia_py.api.problems import problems
from onyxia_py.settings import AuthMode, Settings

router = APIRouter(prefix="/auth", tags=["authentication"])

LOGIN_COOKIE_SECONDS = 600


class SessionInfo(BaseModel):
    """The caller's session, with the CSRF token state-changing requests must echo."""

    username: str
    method: str
    is_admin: bool
    csrf_token: str | None
    auth_mode: str


@router.get(
    "/login",
    summary="Start logging in",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the OpenID Provider"},
        303: {"description": "Auth mode none: logged in, back to `next`"},
        **problems(503),
    },
)
async def login(
    settings: SettingsDep,
    accounts: AccountsDep,
    next: Annotated[str | None, Query(max_length=2048)] = None,
) -> RedirectResponse:
    """Redirect to the OpenID Provider (or, in auth mode none, straight back, logged in)."""
    cookies = cookie_policy(settings)
    if settings.auth.mode is AuthMode.NONE:
        opened = await accounts.local_login(next)
        return _with_session(RedirectResponse(opened.next_path, 303), opened.cookie_value, settings)
    start = await accounts.start_login(next)
    response = RedirectResponse(start.redirect_url, 302)
    response.set_cookie(
        cookies.login_name,
        start.sealed_state,
        max_age=LOGIN_COOKIE_SECONDS,
        path="/",
        secure=cookies.secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get(
    "/callback",
    summary="Where the OpenID Provider sends the browser back",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {"description": "Logged in: to the page where the login started"},
        **problems(401, 503),
    },
)
async def callback(
    request: Request,
    settings: SettingsDep,
    accounts: AccountsDep,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> RedirectResponse:
    """Redeem the authorization code, open a session, go where the login started."""
    opened = await accounts.finish_login(
        code=code,
        state=state,
        error=error,
        sealed_state=request.cookies.get(cookie_policy(settings).login_name),
    )
    return _with_session(RedirectResponse(opened.next_path, 303), opened.cookie_value, settings)


def _with_session(
    response: RedirectResponse, cookie_value: str, settings: Settings
) -> RedirectResponse:
    cookies = cookie_policy(settings)
    response.set_cookie(
        cookies.name,
        cookie_value,
        max_age=settings.auth.session_max_lifetime_seconds,
        path="/",
        secure=cookies.secure,
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(cookies.login_name, path="/", secure=cookies.secure, httponly=True)
    return response


@router.get("/session", summary="The current session and its CSRF token")
async def session(principal: CurrentUser, settings: SettingsDep) -> SessionInfo:
    """Who is logged in; pages and scripts echo `csrf_token` in the X-CSRF-Token header."""
    return SessionInfo(
        username=principal.username,
        method=principal.method.value,
        is_admin=principal.is_admin,
        csrf_token=principal.csrf_token,
        auth_mode=settings.auth.mode.value,
    )


@router.post(
    "/logout",
    summary="Log out",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "To the provider's logout, else the home page"}},
)
async def logout(
    principal: CurrentUser, settings: SettingsDep, accounts: AccountsDep
) -> RedirectResponse:
    """End the session (CSRF-checked) and continue to the provider's logout, if any."""
    next_url = await accounts.logout(principal) or "/"
    response = RedirectResponse(next_url, 303)
    cookies = cookie_policy(settings)
    response.delete_cookie(cookies.name, path="/", secure=cookies.secure, httponly=True)
    return response
