"""What routes depend on, as `Annotated` aliases: routes read like declarations.

Authentication and authorization live here, once: `authenticate` turns a request's credentials
into a `Principal` (and checks CSRF on cookie requests that change state); `require` adds the
scope a route needs. Routes take only the services they use (`KubeDep`, `CacheDep`, ...),
never the whole `Platform`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request

from onyxia_py.accounts.core import Accounts
from onyxia_py.accounts.models import AuthMethod, Principal, Scope
from onyxia_py.auth import Cipher, same
from onyxia_py.auth.dpop import DpopRequest
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.launch import LaunchContext
from onyxia_py.db import AuditLog, CatalogStore, Database, SavedLaunches, Users
from onyxia_py.errors import Forbidden, Unauthenticated
from onyxia_py.helm import HelmEngine
from onyxia_py.kube import KubeClient
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.culler import Culler
from onyxia_py.services.launcher import Launcher as ServiceLauncher
from onyxia_py.services.lifecycle import Services
from onyxia_py.services.outbox import AuditOutbox
from onyxia_py.services.reconciler import Reconciler
from onyxia_py.services.tracker import LaunchTracker
from onyxia_py.settings import AuthMode, Settings, is_loopback
from onyxia_py.storage.service import Storage

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


@dataclass
class CatalogOrigins:
    """Which catalogues live in the database (the others come from files and settings)."""

    database: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Platform:
    """The long-lived services of one running app, built by `app.create_app`."""

    settings: Settings
    replica: str  # this process's name in Leases (leader election, release locks)
    db: Database
    kube: KubeClient
    helm: HelmEngine
    users: Users
    audit: AuditLog
    # Audit rows of changes already made (kept in the cluster while the database is away).
    outbox: AuditOutbox
    accounts: Accounts
    cipher: Cipher
    bootstrap: ProjectBootstrap
    catalogs: Catalogs
    launcher: ServiceLauncher
    services: Services
    culler: Culler
    reconciler: Reconciler
    saved: SavedLaunches
    tracker: LaunchTracker
    cache: ServiceCache
    catalog_store: CatalogStore
    catalog_origins: CatalogOrigins
    launch_context: LaunchContext
    base_dir: Path
    storage: Storage


@dataclass(frozen=True)
class CookiePolicy:
    """The session cookie: `__Host-` and Secure over HTTPS; plain names on http://localhost."""

    name: str
    login_name: str
    secure: bool

    @classmethod
    def for_url(cls, public_url: str) -> CookiePolicy:
        """The policy for a platform served at `public_url`."""
        if public_url.startswith("https://"):
            return cls("__Host-onyxia-session", "__Host-onyxia-login", True)
        return cls("onyxia-session", "onyxia-login", False)


def get_platform(request: Request) -> Platform:
    """The platform services of the app serving `request` (routes take only the parts they
    need, through the dependencies below)."""
    platform: Platform = request.app.state.platform
    return platform


def get_settings(request: Request) -> Settings:
    """The settings of the app serving `request`."""
    return get_platform(request).settings


def get_db(request: Request) -> Database:
    """The database."""
    return get_platform(request).db


def get_kube(request: Request) -> KubeClient:
    """The Kubernetes client."""
    return get_platform(request).kube


def get_audit(request: Request) -> AuditLog:
    """The audit log."""
    return get_platform(request).audit


def get_outbox(request: Request) -> AuditOutbox:
    """Audit rows of changes already made (kept in the cluster while the database is away)."""
    return get_platform(request).outbox


def get_accounts(request: Request) -> Accounts:
    """Logins, sessions and API tokens."""
    return get_platform(request).accounts


def get_cipher(request: Request) -> Cipher:
    """The cipher sealing secrets kept in the database."""
    return get_platform(request).cipher


def get_bootstrap(request: Request) -> ProjectBootstrap:
    """Project namespaces, quotas and role bindings; whom to act as."""
    return get_platform(request).bootstrap


def get_catalogs(request: Request) -> Catalogs:
    """The loaded catalogues."""
    return get_platform(request).catalogs


def get_catalog_store(request: Request) -> CatalogStore:
    """Catalogue definitions kept in the database."""
    return get_platform(request).catalog_store


def get_catalog_origins(request: Request) -> CatalogOrigins:
    """Which catalogues live in the database."""
    return get_platform(request).catalog_origins


def get_launch_context(request: Request) -> LaunchContext:
    """What computing a launch's values needs."""
    return get_platform(request).launch_context


def get_base_dir(request: Request) -> Path:
    """The folder relative paths in settings and catalogue definitions start from."""
    return get_platform(request).base_dir


def get_service_launcher(request: Request) -> ServiceLauncher:
    """Launches and removes services."""
    return get_platform(request).launcher


def get_services(request: Request) -> Services:
    """Service details, suspend and resume, changes."""
    return get_platform(request).services


def get_tracker(request: Request) -> LaunchTracker:
    """Launches in progress on this replica."""
    return get_platform(request).tracker


def get_cache(request: Request) -> ServiceCache:
    """The per-project listing cache."""
    return get_platform(request).cache


def get_saved(request: Request) -> SavedLaunches:
    """Saved launch configurations."""
    return get_platform(request).saved


def get_storage(request: Request) -> Storage:
    """S3 credentials and the bucket browser."""
    return get_platform(request).storage


T = TypeVar("T")


def _on_the_loop(get: Callable[[Request], T]) -> Callable[[Request], Awaitable[T]]:
    """`get` as an async dependency: FastAPI runs a plain function dependency in its thread
    pool, a hop between threads per dependency per request that costs more than the lookup."""

    async def dependency(request: Request) -> T:
        return get(request)

    dependency.__name__ = dependency.__qualname__ = get.__name__
    dependency.__doc__ = get.__doc__
    return dependency


PlatformDep = Annotated[Platform, Depends(_on_the_loop(get_platform))]
SettingsDep = Annotated[Settings, Depends(_on_the_loop(get_settings))]
DbDep = Annotated[Database, Depends(_on_the_loop(get_db))]
KubeDep = Annotated[KubeClient, Depends(_on_the_loop(get_kube))]
AuditDep = Annotated[AuditLog, Depends(_on_the_loop(get_audit))]
OutboxDep = Annotated[AuditOutbox, Depends(_on_the_loop(get_outbox))]
AccountsDep = Annotated[Accounts, Depends(_on_the_loop(get_accounts))]
CipherDep = Annotated[Cipher, Depends(_on_the_loop(get_cipher))]
BootstrapDep = Annotated[ProjectBootstrap, Depends(_on_the_loop(get_bootstrap))]
CatalogsDep = Annotated[Catalogs, Depends(_on_the_loop(get_catalogs))]
CatalogStoreDep = Annotated[CatalogStore, Depends(_on_the_loop(get_catalog_store))]
CatalogOriginsDep = Annotated[CatalogOrigins, Depends(_on_the_loop(get_catalog_origins))]
LaunchContextDep = Annotated[LaunchContext, Depends(_on_the_loop(get_launch_context))]
BaseDirDep = Annotated[Path, Depends(_on_the_loop(get_base_dir))]
ServiceLauncherDep = Annotated[ServiceLauncher, Depends(_on_the_loop(get_service_launcher))]
ServicesDep = Annotated[Services, Depends(_on_the_loop(get_services))]
TrackerDep = Annotated[LaunchTracker, Depends(_on_the_loop(get_tracker))]
CacheDep = Annotated[ServiceCache, Depends(_on_the_loop(get_cache))]
SavedDep = Annotated[SavedLaunches, Depends(_on_the_loop(get_saved))]
StorageDep = Annotated[Storage, Depends(_on_the_loop(get_storage))]


def cookie_policy(settings: Settings) -> CookiePolicy:
    """The cookie policy of a platform with `settings`."""
    return CookiePolicy.for_url(settings.server.public_url)


async def _csrf_token_sent(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _check_origin(request: Request, public_url: str) -> None:
    """A second layer beside the CSRF token for cookie-authenticated changes: a browser's
    `Origin` (or `Sec-Fetch-Site`) must say the request comes from our own pages, that is the
    public URL's origin or the host the request was sent to (behind a TLS-terminating proxy the
    scheme may differ). Clients that send neither (scripts holding the cookie) rely on the
    CSRF token alone."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise Forbidden("cross-site request refused", reason="origin")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "").lower()
    if origin.lower() == _origin_of(public_url) or (
        host and urlsplit(origin.lower()).netloc == host
    ):
        return
    raise Forbidden(f"request from another origin ({origin[:100]}) refused", reason="origin")


def _dpop(request: Request, settings: Settings) -> DpopRequest:
    """The request's one DPoP proof, with the URL the client called (the public URL's origin:
    behind a proxy the request's own may differ)."""
    proofs = request.headers.getlist("dpop")
    if len(proofs) != 1 or not proofs[0].strip():
        raise Unauthenticated("a DPoP token needs exactly one DPoP proof header")
    public = urlsplit(settings.server.public_url)
    url = urlunsplit((public.scheme, public.netloc, request.url.path, "", ""))
    return DpopRequest(proofs[0].strip(), request.method, url)


async def authenticate(request: Request, settings: SettingsDep, accounts: AccountsDep) -> Principal:
    """The caller: bearer token, else session cookie (CSRF-checked), else auth mode none."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "dpop" and token.strip():
            return await accounts.bearer_principal(token.strip(), _dpop(request, settings))
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "send credentials as 'Authorization: Bearer <token>' (or 'DPoP <token>' with a "
                "DPoP proof)"
            )
        return await accounts.bearer_principal(token.strip())
    cookie = request.cookies.get(cookie_policy(settings).name)
    principal = await accounts.session_principal(cookie) if cookie else None
    if principal is not None:
        if request.method not in SAFE_METHODS:
            _check_origin(request, settings.server.public_url)
            sent = await _csrf_token_sent(request)
            if not (sent and principal.csrf_token and same(sent, principal.csrf_token)):
                raise Forbidden(
                    f"missing or wrong CSRF token: send the {CSRF_HEADER} header "
                    "given by GET /auth/session",
                    reason="csrf",
                )
        return principal
    local_allowed = settings.dev_mode or is_loopback(settings.server.host)
    if settings.auth.mode is AuthMode.NONE and request.method in SAFE_METHODS and local_allowed:
        return await accounts.local_principal()
    raise Unauthenticated("log in at /auth/login, or send an API token as a bearer token")


def require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the authenticated caller, refused unless their credential has `scope`."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not principal.allows(scope):
            if scope is Scope.ADMIN and not principal.is_admin:
                raise Forbidden("this needs the administrator role")
            raise Forbidden(f"this credential lacks the {scope.value} scope")
        return principal

    return check


async def logged_in(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """The caller, refused when the credential is an API token: managing tokens needs a login
    (so a leaked token can neither mint nor revoke others)."""
    if principal.method is AuthMethod.API_TOKEN:
        raise Forbidden("API tokens cannot manage API tokens: log in to do this")
    return principal


CurrentUser = Annotated[Principal, Depends(authenticate)]
LoggedIn = Annotated[Principal, Depends(logged_in)]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Launcher = Annotated[Principal, Depends(require(Scope.LAUNCH))]
Admin = Annotated[Principal, Depends(require(Scope.ADMIN))]
