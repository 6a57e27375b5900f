"""The composition root: the only place that builds the platform's services and wires them."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr

from onyxia_py.accounts.core import Accounts
from onyxia_py.api import (
    admin,
    admin_catalogs,
    admin_services,
    auth,
    gpus,
    me,
    ops,
    s3,
    saved,
    services,
    ui_support,
)
from onyxia_py.api import catalogs as catalogs_api
from onyxia_py.api import docs as api_docs
from onyxia_py.api.admin_catalogs import SEAL_CONTEXT
from onyxia_py.api.deps import CatalogOrigins, Platform
from onyxia_py.api.middleware import Metrics, RequestContextMiddleware, security_headers
from onyxia_py.api.openapi import install_openapi
from onyxia_py.api.problems import install_problem_handlers
from onyxia_py.auth import Cipher, OidcProvider, ProviderConfig, derive_key
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.launch import LaunchContext
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir
from onyxia_py.catalog.specs import load_specs
from onyxia_py.catalog.sync import CatalogRefresher, CatalogSync
from onyxia_py.db import (
    AuditLog,
    CatalogStore,
    Database,
    ProjectOwners,
    SavedLaunches,
    SessionStore,
    Users,
    upgrade,
)
from onyxia_py.db.sessions import ApiTokenStore
from onyxia_py.helm import ProcessLocks, ReleaseLocks, SdkHelmEngine
from onyxia_py.kube import KubeClient, KubeLeases, pod_namespace
from onyxia_py.leadership.core import (
    Elector,
    Job,
    Leadership,
    Timing,
    Unelected,
    default_identity,
)
from onyxia_py.leadership.locks import LeaseLocks, LockTiming
from onyxia_py.naming import short_hash
from onyxia_py.onyxia_compat import build_router as build_onyxia_router
from onyxia_py.onyxia_compat.cors import install_cors
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.ownership import GroupProjects
from onyxia_py.s3 import BotoObjectStore, BotoTokenService
from onyxia_py.s3.roles import BotoRoleReader
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.culler import Culler
from onyxia_py.services.launcher import Launcher
from onyxia_py.services.lifecycle import Services
from onyxia_py.services.outbox import AuditOutbox, KubeConfigMaps
from onyxia_py.services.reconciler import Reconciler
from onyxia_py.services.tracker import LaunchTracker
from onyxia_py.settings import DEFAULT_SESSION_SECRET, AuthMode, AuthSettings, Settings
from onyxia_py.storage.browser import BucketBrowser
from onyxia_py.storage.checks import S3SettingsConflict, check_credential_lifetime
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.injection import S3Injector
from onyxia_py.storage.refresh import CredentialRefresher
from onyxia_py.storage.service import Storage
from onyxia_py.ui import pages

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def build_provider(settings: AuthSettings) -> OidcProvider | None:
    """The OpenID Provider client, in auth mode oidc."""
    if settings.mode is not AuthMode.OIDC:
        return None
    assert settings.issuer_url
    assert settings.client_id
    return OidcProvider(
        ProviderConfig(
            issuer=settings.issuer_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value()
            if settings.client_secret
            else None,
            audience=settings.audience or settings.client_id,
            scopes=tuple(settings.scopes),
            algorithms=frozenset(settings.algorithms),
            leeway_seconds=settings.leeway_seconds,
            timeout_seconds=settings.http_timeout_seconds,
            jwks_min_refresh_seconds=settings.jwks_min_refresh_seconds,
        )
    )


def build_cipher(settings: Settings) -> Cipher:
    """Seals provider tokens at rest: operator keys, else a key derived from the session secret."""
    secrets = [k.get_secret_value() for k in settings.auth.token_encryption_keys] or [
        settings.server.session_secret.get_secret_value()
    ]
    return Cipher([derive_key(s, "onyxia-py token sealing") for s in secrets])


def build_storage(
    settings: Settings,
    kube: KubeClient,
    accounts: Accounts,
    users: Users,
    bootstrap: ProjectBootstrap,
) -> Storage:
    """Object storage; without S3 settings, a service that says S3 is not configured."""
    s3_settings, projects = settings.s3, settings.projects
    if not s3_settings.enabled:
        injector = S3Injector(s3_settings, projects, None, kube)
        return Storage(s3_settings, projects, None, None, kube, injector, None)
    oidc = settings.auth.mode is AuthMode.OIDC
    credentials = S3Credentials(
        s3_settings,
        projects,
        BotoTokenService(s3_settings),
        accounts,
        issuer=settings.auth.issuer_url if oidc else None,
        audience=(settings.auth.audience or settings.auth.client_id) if oidc else None,
    )
    refresher = CredentialRefresher(
        settings=s3_settings, kube=kube, projects=bootstrap, users=users, credentials=credentials
    )
    store = BotoObjectStore(s3_settings)
    buckets = BucketBrowser(s3_settings, store)
    injector = S3Injector(s3_settings, projects, credentials, kube, buckets)
    return Storage(s3_settings, projects, credentials, store, kube, injector, refresher)


def session_secret_file(settings: Settings) -> Path:
    """Where auth mode none keeps its generated secret (see server.session_secret_file)."""
    if settings.server.session_secret_file is not None:
        return settings.server.session_secret_file
    url = settings.database.url.get_secret_value()
    scheme, _, rest = url.partition(":///")
    if scheme.startswith("sqlite") and rest and not rest.startswith(":memory:"):
        return Path(rest.split("?", 1)[0]).parent / "onyxia-session-secret"
    return Path.home() / ".local" / "share" / "onyxia-py" / "session-secret"


def with_installation_secret(settings: Settings) -> Settings:
    """`settings` with a session secret of this installation's own when none was set (auth mode
    none only: oidc refuses to start without one): generated once, kept with mode 0600."""
    if settings.server.session_secret.get_secret_value() != DEFAULT_SESSION_SECRET:
        return settings
    path = session_secret_file(settings)
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            secret = path.read_text().strip()
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secret + "\n")
    if len(secret) < 32:
        raise ValueError(f"{path} holds no usable session secret: delete it to get a new one")
    os.chmod(path, 0o600)
    server = settings.server.model_copy(update={"session_secret": SecretStr(secret)})
    return settings.model_copy(update={"server": server})


def build_platform(settings: Settings, base_dir: Path | None = None) -> Platform:
    """The long-lived services, built from `settings` (relative paths from `base_dir`)."""
    settings = with_installation_secret(settings)
    base = base_dir or Path.cwd()
    db = Database(settings.database)
    users, audit = Users(db), AuditLog(db)
    cipher = build_cipher(settings)
    paths = [p if p.is_absolute() else base / p for p in settings.catalogs.paths]
    catalogs = Catalogs(
        settings.catalogs,
        load_specs(paths, settings.catalogs.definitions, base),
        base_dir=base,
    )
    schemas_dir = settings.catalogs.schemas_dir
    registry = SchemaRegistry(
        bundled_schema_dir(),
        (schemas_dir if schemas_dir.is_absolute() else base / schemas_dir) if schemas_dir else None,
    )
    kube = KubeClient(settings.kubernetes)
    replica = settings.leader_election.identity or default_identity()
    helm = SdkHelmEngine(
        settings.helm,
        kubeconfig=settings.kubernetes.kubeconfig,
        kube_context=settings.kubernetes.context,
        locks=build_release_locks(settings, kube, replica),
    )
    bootstrap = ProjectBootstrap(kube, settings.projects)
    outbox = AuditOutbox(audit, KubeConfigMaps(kube), platform_namespace(settings))
    tracker = LaunchTracker()
    url_template = settings.region.service_url_template
    cache = ServiceCache(kube, url_template=url_template)
    services = Services(
        kube=kube,
        helm=helm,
        bootstrap=bootstrap,
        catalogs=catalogs,
        audit=outbox,
        cache=cache,
        url_template=url_template,
    )
    launch_context = LaunchContext(
        catalogs=catalogs,
        registry=registry,
        region=settings.region,
        settings=settings.catalogs,
        project_secret=derive_key(
            settings.server.session_secret.get_secret_value(), "onyxia-py project passwords"
        ),
    )
    accounts = Accounts(
        settings.auth,
        public_url=settings.server.public_url,
        provider=build_provider(settings.auth),
        cipher=cipher,
        users=users,
        sessions=SessionStore(db),
        tokens=ApiTokenStore(db),
        audit=audit,
    )
    accounts.usable_groups = GroupProjects(ProjectOwners(db), kube, settings.projects, audit).usable
    storage = build_storage(settings, kube, accounts, users, bootstrap)
    launcher = Launcher(
        kube=kube,
        helm=helm,
        bootstrap=bootstrap,
        launch_context=launch_context,
        audit=audit,
        outbox=outbox,
        tracker=tracker,
        cache=cache,
        timeout_seconds=settings.helm.timeout_seconds,
        cleanup_seconds=settings.services.launch_cleanup_seconds,
        s3=storage.injector,
    )
    return Platform(
        settings=settings,
        replica=replica,
        db=db,
        kube=kube,
        helm=helm,
        users=users,
        audit=audit,
        outbox=outbox,
        accounts=accounts,
        cipher=cipher,
        bootstrap=bootstrap,
        catalogs=catalogs,
        launcher=launcher,
        tracker=tracker,
        cache=cache,
        saved=SavedLaunches(db),
        services=services,
        culler=Culler(
            kube=kube,
            services=services,
            bootstrap=bootstrap,
            catalogs=catalogs,
            settings=settings.services,
            audit=outbox,  # rows of what it did already: kept while the database is away
        ),
        reconciler=Reconciler(
            kube=kube,
            helm=helm,
            owners=bootstrap,
            installs=launcher,
            audit=outbox,
            mirrors=cache,
            sweep_seconds=settings.services.reconcile_sweep_seconds,
            bound_seconds=settings.helm.timeout_seconds + settings.services.launch_cleanup_seconds,
            interval_seconds=settings.services.reconcile_interval_seconds,
            user_prefix=settings.projects.kubernetes_user_prefix,
        ),
        catalog_store=CatalogStore(db),
        catalog_origins=CatalogOrigins(),
        launch_context=launch_context,
        base_dir=base,
        storage=storage,
    )


def build_catalog_sync(platform: Platform) -> CatalogSync:
    """What keeps this replica's catalogues in step with the database and the leader."""
    return CatalogSync(
        platform.catalogs,
        platform.catalog_store,
        unseal=functools.partial(platform.cipher.decrypt, context=SEAL_CONTEXT),
        base_dir=platform.base_dir,
        database_ids=platform.catalog_origins.database,
        settings=platform.settings.catalogs,
    )


def leader_jobs(platform: Platform) -> list[Job]:
    """The background jobs only the leader runs."""
    return [
        platform.culler,
        platform.reconciler,
        platform.outbox,
        platform.storage,
        CatalogRefresher(platform.catalogs, platform.catalog_store, platform.settings.catalogs),
    ]


def platform_namespace(settings: Settings) -> str:
    """The platform's own namespace (its Leases, its audit outbox)."""
    return settings.leader_election.lease_namespace or pod_namespace() or "default"


def build_release_locks(settings: Settings, kube: KubeClient, replica: str) -> ReleaseLocks:
    """One Helm action per release at a time: among the replicas (Leases) when they elect a
    leader, else inside this process."""
    election = settings.leader_election
    if not election.enabled:
        return ProcessLocks()
    leases = KubeLeases(
        kube,
        platform_namespace(settings),
        timeout_seconds=min(settings.kubernetes.request_timeout_seconds, 10.0),
    )
    timing = LockTiming(
        duration_seconds=election.lease_duration_seconds,
        renew_seconds=election.retry_period_seconds,
        # The longest a legitimate holder keeps it: an install and its clean-up.
        max_wait_seconds=settings.helm.timeout_seconds + settings.services.launch_cleanup_seconds,
    )
    return LeaseLocks(leases, replica, timing)


def build_leadership(platform: Platform, jobs: list[Job]) -> Leadership:
    """An Elector over the installation's Lease, or no election when it is turned off."""
    settings = platform.settings.leader_election
    if not settings.enabled:
        return Unelected(jobs)
    timing = Timing(
        lease_duration_seconds=settings.lease_duration_seconds,
        renew_deadline_seconds=settings.renew_deadline_seconds,
        retry_period_seconds=settings.retry_period_seconds,
    )
    leases = KubeLeases(
        platform.kube,
        platform_namespace(platform.settings),
        timeout_seconds=min(
            platform.settings.kubernetes.request_timeout_seconds, settings.renew_deadline_seconds
        ),
    )
    # Replicas that share a database are one installation: by default they share a Lease.
    name = settings.lease_name or f"onyxia-py-{short_hash(platform.db.safe_url)}"
    return Elector(leases, name, platform.replica, jobs, timing)


def create_app(settings: Settings) -> FastAPI:
    """The onyxia-py web application for `settings`."""
    platform = build_platform(settings)
    catalog_sync = build_catalog_sync(platform)
    leadership = build_leadership(platform, leader_jobs(platform))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Kubernetes and database calls block a thread each: more than the default few.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="blocking")
        )
        if settings.s3.enabled:
            try:  # before anything else: a conflict of settings is named at start
                await check_credential_lifetime(settings.s3, BotoRoleReader(settings.s3))
            except S3SettingsConflict as exc:
                log.error("refusing to start: %s", exc)
                raise
        if settings.database.migrate_on_start:
            log.info("applying database migrations to %s", platform.db.safe_url)
            await upgrade(platform.db.url)
        platform.cache.start()  # the shared watches: listings are ready when users come
        await catalog_sync.load()
        await platform.catalogs.start()
        await catalog_sync.start()
        await leadership.start()
        yield
        await leadership.stop()
        await catalog_sync.stop()
        await platform.launcher.close()
        await platform.outbox.close()
        await platform.cache.close()
        await platform.catalogs.stop()
        if platform.accounts.provider is not None:
            await platform.accounts.provider.close()  # type: ignore[attr-defined]
        await platform.db.close()
        platform.kube.close()

    app = FastAPI(
        title="onyxia-py",
        version=VERSION,
        summary="Self-service data-science platform: Onyxia's control plane in Python.",
        lifespan=lifespan,
        docs_url=None,  # served offline by api/docs.py
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.catalog_sync = catalog_sync
    app.state.leadership = leadership
    platform.accounts.on_login = platform.bootstrap.ensure_all
    app.state.metrics = Metrics()
    issuer = settings.auth.issuer_url if settings.auth.mode is AuthMode.OIDC else None
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        trust_request_id=settings.server.trust_request_id,
        access_log=settings.server.access_log,
        headers=security_headers(
            form_targets=(_origin(issuer),) if issuer else (),
            https=settings.server.public_url.startswith("https://"),
        ),
    )
    install_problem_handlers(app)
    api = (
        ops,
        auth,
        me,
        catalogs_api,
        services,
        saved,
        gpus,
        admin,
        admin_catalogs,
        admin_services,
        ui_support,
        s3,
    )
    for module in (*api, pages, api_docs):
        app.include_router(module.router)
    compat = settings.onyxia_compat  # Onyxia's REST API, for the stock Onyxia web
    onyxia = [build_onyxia_router(compat.prefix)] if compat.enabled else []
    for router in onyxia:
        app.include_router(router)
        install_cors(app, router, compat.cors_allowed_origins)  # the web elsewhere
    install_openapi(app, [*(module.router for module in api), *onyxia])
    app.mount(api_docs.ASSETS_URL, StaticFiles(directory=api_docs.ASSETS), name="api-docs")
    app.mount("/static", StaticFiles(directory=pages.WEB_DIR / "static"), name="static")
    return app


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
