"""What every page shares: templates, the current project, the header's context, error pages.

Pages are FastAPI routes of `PageRoute`: a page that needs a login sends the browser to the login
(and back), and any other error a user can be told about becomes a friendly HTML page with the
same words the JSON API would use, instead of a problem+json body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from onyxia_py.accounts.core import Accounts
from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import CSRF_FIELD, CSRF_HEADER, authenticate, get_accounts, get_settings
from onyxia_py.errors import Forbidden, OnyxiaError, Unauthenticated
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project
from onyxia_py.settings import AuthMode, Settings

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
templates = Jinja2Templates(directory=WEB_DIR / "templates")


def switch_action(path: str) -> str:
    """Where the project switcher goes from `path`: the same page, unless it shows one thing
    of the current project (a service, a launch form), which the other project may not have."""
    if path.startswith("/services/"):
        return "/services"
    if path.startswith("/launcher/"):
        return "/catalog"
    return path


templates.env.globals["switch_action"] = switch_action

PROJECT_COOKIE = "onyxia-project"
S3_STATUS_PATH = "/api/projects/{project}/s3"
PROJECT_COOKIE_SECONDS = 365 * 24 * 3600


def login_path(request: Request) -> str:
    """The login URL that comes back to this page."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/auth/login?next={quote(here, safe='')}"


class PageRoute(APIRoute):
    """A route answering HTML: login redirects and error pages instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, wrapped so errors a user can be told about become pages."""
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                return RedirectResponse(login_path(request), 303)
            except OnyxiaError as exc:
                return await error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                wrong = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors())
                return await error_page(
                    request, 400, "Bad address", f"this address has a wrong part: {wrong}"
                )

        return page


@dataclass(frozen=True)
class Page:
    """Who looks at a page, and in which of their projects."""

    principal: Principal | None
    projects: tuple[Project, ...]
    project: Project | None
    chosen_now: bool = False

    @property
    def project_id(self) -> str:
        """The current project's id ("" without one)."""
        return self.project.id if self.project else ""


def page_for(request: Request, settings: Settings, principal: Principal | None) -> Page:
    """The page context: `?project=` if it is one of the caller's, else the remembered one,
    else the personal project."""
    if principal is None:
        return Page(None, (), None)
    projects = tuple(
        projects_of(principal.identity.username, principal.identity.groups, settings.projects)
    )
    by_id = {p.id: p for p in projects}
    asked = request.query_params.get("project")
    if asked and asked in by_id:
        return Page(principal, projects, by_id[asked], chosen_now=True)
    remembered = request.cookies.get(PROJECT_COOKIE)
    return Page(principal, projects, by_id.get(remembered or "", projects[0]))


async def optional_principal(
    request: Request, settings: Settings, accounts: Accounts
) -> Principal | None:
    """The caller if they are logged in (or in auth mode none), else None."""
    try:
        return await authenticate(request, settings, accounts)
    except (Unauthenticated, Forbidden):
        return None


def serves(request: Request, path: str) -> bool:
    """True when the app serves the API route `path` (as its OpenAPI document names it; the
    document is built once per app)."""
    try:
        paths: dict[str, Any] = request.app.openapi().get("paths", {})
    except Exception:  # a broken route's schema must not take every page down with it
        log.exception("the OpenAPI document cannot be built; optional pages are left out")
        return False
    return path in paths


def s3_available(request: Request, settings: Settings) -> bool:
    """True when S3 is configured and its API is served (the Files page needs both)."""
    return settings.s3.enabled and serves(request, S3_STATUS_PATH)


def render(
    request: Request,
    page: Page,
    template: str,
    *,
    section: str = "",
    title: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """`template` with the header's context; remembers a project chosen with `?project=`."""
    settings = get_settings(request)
    principal = page.principal
    response = templates.TemplateResponse(
        request,
        template,
        {
            "page": page,
            "principal": principal,
            "section": section,
            "title": title,
            "csrf_field": CSRF_FIELD,
            "csrf_header": CSRF_HEADER,
            "csrf_token": principal.csrf_token if principal else None,
            "single_user": settings.auth.mode is AuthMode.NONE,
            "s3_available": s3_available(request, settings),
            "login_url": login_path(request),
            **context,
        },
        status_code=status_code,
    )
    if page.chosen_now and page.project is not None:
        response.set_cookie(
            PROJECT_COOKIE,
            page.project.id,
            max_age=PROJECT_COOKIE_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
            secure=settings.server.public_url.startswith("https://"),
        )
    return response


async def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    """A friendly page for an error, with the request id to quote."""
    settings = get_settings(request)
    try:
        principal = await optional_principal(request, settings, get_accounts(request))
    except OnyxiaError:
        principal = None  # the header then offers to log in; the error is what matters here
    page = page_for(request, settings, principal)
    return render(
        request,
        Page(page.principal, page.projects, page.project),
        "error.html",
        title=title,
        status_code=status,
        status=status,
        detail=detail,
        request_id=str(request.scope.get("request_id", "-")),
    )
