"""Onyxia's configuration, regions, onboarding and launcher schemas over our settings and domain.

`GET /public/configuration` and `/public/regions` describe the one region of this platform, built
from the settings (region, projects, S3, auth, kubernetes), in the shape the Onyxia web reads
(anchor section 2, the web's `ApiTypes.ts`). `POST /onboarding` brings a project up through the
ProjectBootstrap, `GET /profile/schema` says there is no user profile form, and
`GET /my-lab/schemas/...` is the launch form's schema as `prepare_form` resolves it. Nothing here
decides what the domain does not already decide.
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, Path, Request, Response

from onyxia_py.accounts.models import AuthMethod, Principal
from onyxia_py.api.catalogs import visible_catalog
from onyxia_py.api.deps import (
    BootstrapDep,
    CatalogsDep,
    LaunchContextDep,
    Reader,
    SettingsDep,
    StorageDep,
)
from onyxia_py.api.deps import Launcher as Changer
from onyxia_py.api.problems import problems
from onyxia_py.catalog.launch import LaunchRequest, prepare_form
from onyxia_py.errors import Forbidden, OnyxiaError
from onyxia_py.onyxia_compat.deps import OnyxiaProject
from onyxia_py.onyxia_compat.models import (
    BookmarkOut,
    BuildOut,
    CertificateAuthorityInjectionOut,
    CertManagerOut,
    ConfigurationOut,
    ExposeOut,
    IstioOut,
    K8sPublicEndpointOut,
    OidcConfigurationOut,
    OnboardingIn,
    PackageRepositoryInjectionOut,
    ProxyInjectionOut,
    QuotasOut,
    RegionDataOut,
    RegionOut,
    RegionServicesOut,
    S3Out,
    StsOut,
    StsRoleOut,
)
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project
from onyxia_py.settings import AuthMode, S3CredentialsMode, Settings
from onyxia_py.storage.injection import storage_user
from onyxia_py.storage.models import TokenHint

log = logging.getLogger(__name__)

REGION_ID: Final = "default"
STARTED: Final = int(time.time())
# The web fills `$1` from a claim matched by this pattern: exactly the usernames (and group
# names) our bucket and role names keep as they are (a label of at most 40 characters; see
# storage.core.name_part). Anyone else's names are hashed by us, which the web cannot do.
SAFE_NAME_PATTERN: Final = r"^([a-z0-9](?:[-a-z0-9]{0,38}[a-z0-9])?)$"
USERNAME: Final = "{username}"
PROFILE_NAME: Final = "default"

CatalogId = Annotated[str, Path(alias="catalogId", max_length=63)]
ChartName = Annotated[str, Path(alias="chartName", max_length=253)]
ChartVersion = Annotated[str, Path(max_length=64)]


def register(router: APIRouter) -> None:
    """Add this module's routes to Onyxia's router."""
    get = router.get
    get(
        "/public/configuration",
        summary="The regions and how to sign in",
        response_model_exclude_none=True,
    )(configuration)
    get("/public/regions", summary="The regions", response_model_exclude_none=True)(regions)
    router.post(
        "/onboarding",
        summary="Create or update a project's namespace",
        response_class=Response,
        responses=problems(403, 409),
    )(onboarding)
    get("/profile/schema", summary="The user profile form (none)", response_class=Response)(
        profile_schema
    )
    get(
        "/my-lab/schemas/{catalogId}/charts/{chartName}/versions/{version}",
        summary="A chart's values schema, resolved for me",
        responses=problems(404),
    )(chart_schema)


# -- pure builders ---------------------------------------------------------------------------


def oidc_configuration(settings: Settings) -> OidcConfigurationOut | None:
    """How the web signs in: our provider, the web's client; None in auth mode none."""
    auth = settings.auth
    if auth.mode is not AuthMode.OIDC or not auth.issuer_url or not auth.client_id:
        return None
    return OidcConfigurationOut(
        issuer_uri=auth.issuer_url,
        client_id=settings.onyxia_compat.web_client_id or auth.client_id,
        scope=" ".join(auth.scopes),
        audience=auth.audience,
    )


def url_port(template: str) -> int | None:
    """The explicit port of service URLs made from `template` (`http://{host}:8080`), if any."""
    try:
        return urlsplit(template.replace("{host}", "host")).port
    except ValueError:
        return None


def _templated(template: str) -> str:
    return template.replace(USERNAME, "$1")


def s3_entry(settings: Settings) -> S3Out | None:
    """The region's S3 profile, or None without S3. The web mints its own credentials with
    AssumeRoleWithWebIdentity and its access token; it cannot do our assume-role mode, so
    there the entry only pre-fills its "new S3 profile" form. A role or session name with
    `{username}` becomes the web's `$1`, from the username claim."""
    s3 = settings.s3
    endpoint = s3.browser_endpoint_url  # the browser calls S3 itself
    if not s3.enabled or not endpoint or not s3.role_arn:
        return None
    endpoint = endpoint.rstrip("/")
    base = {"url": endpoint, "region": s3.region, "path_style_access": s3.path_style}
    if s3.credentials_mode is not S3CredentialsMode.WEB_IDENTITY:
        return S3Out(**base)
    claim = settings.auth.username_claim
    per_user = USERNAME in s3.role_arn or USERNAME in s3.role_session_name
    role = StsRoleOut(
        role_arn=_templated(s3.role_arn),
        role_session_name=_templated(s3.role_session_name),
        profile_name=PROFILE_NAME,
        claim_name=claim if per_user else None,
        included_claim_pattern=SAFE_NAME_PATTERN if per_user else None,
    )
    return S3Out(
        **base,
        sts=StsOut(
            url=(s3.browser_sts_endpoint_url or endpoint).rstrip("/"),
            duration_seconds=s3.duration_seconds,
            role=role,
        ),
        bookmarks=bookmarks(settings),
    )


def bookmarks(settings: Settings) -> list[BookmarkOut]:
    """The personal bucket and, when group names are not rewritten, each group's bucket, for
    the names the web can compute (see SAFE_NAME_PATTERN)."""
    s3, auth = settings.s3, settings.auth
    found = [
        BookmarkOut(
            s3_uri=f"s3://{s3.user_bucket_prefix}$1/",
            title={"en": "My bucket", "fr": "Mon bucket"},
            claim_name=auth.username_claim,
            included_claim_pattern=SAFE_NAME_PATTERN,
        )
    ]
    if not settings.projects.group_name_pattern:
        found.append(
            BookmarkOut(
                s3_uri=f"s3://{s3.group_bucket_prefix}$1/",
                title={"en": "Project $1", "fr": "Projet $1"},
                claim_name=auth.groups_claim,
                included_claim_pattern=SAFE_NAME_PATTERN,
            )
        )
    return found


def region_out(settings: Settings) -> RegionOut:
    """The one region of this platform, from its settings."""
    region, projects = settings.region, settings.projects
    s3 = s3_entry(settings)
    return RegionOut(
        id=REGION_ID,
        name="onyxia-py",
        description=f"onyxia-py at {settings.server.public_url}",
        services=RegionServicesOut(
            namespace_prefix=projects.user_namespace_prefix,
            group_namespace_prefix=projects.group_namespace_prefix,
            username_prefix=projects.kubernetes_user_prefix,
            group_prefix=projects.kubernetes_group_prefix,
            namespace_labels=dict(projects.namespace_labels),
            namespace_annotations=dict(projects.namespace_annotations),
            quotas=QuotasOut(
                user_enabled=projects.quota_enabled,
                user=dict(projects.user_quota),
                roles={k: dict(v) for k, v in projects.role_quotas.items()},
                group_enabled=projects.quota_enabled,
                group=dict(projects.group_quota),
            ),
            expose=ExposeOut(
                domain=region.domain,
                ingress=region.ingress,
                route=region.route,
                ingress_class_name=region.ingress_class,
                ingress_port=url_port(region.service_url_template),
                istio=IstioOut(enabled=region.istio_enabled, gateways=list(region.istio_gateways)),
                cert_manager=CertManagerOut(
                    use_cert_manager=region.use_cert_manager,
                    cert_manager_cluster_issuer=region.cert_manager_issuer,
                ),
            ),
            allowed_uri_pattern=region.allowed_uri_pattern,
            k8s_public_endpoint=(
                K8sPublicEndpointOut(url=settings.kubernetes.public_url)
                if settings.kubernetes.public_url
                else None
            ),
            custom_values=dict(region.custom_values),
            init_script=region.init_script_url,
        ),
        data=RegionDataOut(s3=[s3]) if s3 is not None else None,
        proxy_injection=(
            ProxyInjectionOut.model_validate(region.proxy) if region.proxy is not None else None
        ),
        package_repository_injection=(
            PackageRepositoryInjectionOut.model_validate(region.package_repositories)
            if region.package_repositories is not None
            else None
        ),
        certificate_authority_injection=(
            CertificateAuthorityInjectionOut(
                cacerts=region.certificate_authority,
                path_to_ca_bundle=region.certificate_authority_path,
            )
            if region.certificate_authority or region.certificate_authority_path
            else None
        ),
    )


def server_version() -> str:
    """This server's version (the installed package's)."""
    try:
        return package_version("onyxia-py")
    except PackageNotFoundError:
        return "unknown"


def onboarded_project(projects: list[Project], group: str | None) -> Project:
    """The project `POST /onboarding {group}` is about: the personal one without a group,
    else the caller's project of that group (Forbidden when they are not in it)."""
    if group is None:
        return projects[0]
    for project in projects:
        if project.group is not None and group in (project.group, project.id):
            return project
    raise Forbidden(f"you are not a member of group {group!r}")


# -- routes ----------------------------------------------------------------------------------


async def configuration(settings: SettingsDep) -> ConfigurationOut:
    """The web's first call: this server's version, its region and how to sign in (left out
    in auth mode none: the web then signs nobody in)."""
    return ConfigurationOut(
        build=BuildOut(version=server_version(), timestamp=STARTED),
        regions=[region_out(settings)],
        oidc_configuration=oidc_configuration(settings),
    )


async def regions(settings: SettingsDep) -> list[RegionOut]:
    """The regions: this platform is one."""
    return [region_out(settings)]


def web_identity(request: Request, principal: Principal) -> TokenHint:
    """The caller's own OIDC access token when they sent one (bearer or DPoP: the web's), else
    their session's (as `api.s3` picks it)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if principal.method is AuthMethod.BEARER and scheme.lower() in ("bearer", "dpop"):
        return TokenHint(web_token=token.strip() or None, session_id=principal.session_id)
    return TokenHint(session_id=principal.session_id)


async def onboarding(
    request: Request,
    principal: Changer,  # it changes the cluster: never with a read-only token
    settings: SettingsDep,
    bootstrap: BootstrapDep,
    storage: StorageDep,
    body: Annotated[OnboardingIn | None, Body()] = None,
) -> Response:
    """Create or bring up to date the namespace of the caller's personal project, or of their
    group's project (`group`): namespace, RoleBinding, quota, limits and network policy, as at
    login. Idempotent; 403 for a group the caller is not in, 409 when the namespace belongs to
    someone else. With S3, the project's bucket is made ready too (created with its CORS
    rules, and the caller's provisioned role written by minting credentials), so that the
    web's own STS call and S3 explorer find them."""
    identity = principal.identity
    projects = projects_of(identity.username, identity.groups, settings.projects)
    project = onboarded_project(projects, body.group if body is not None else None)
    await bootstrap.ensure(project, identity)
    if storage.configured:
        try:
            await storage.ready(storage_user(principal), project, web_identity(request, principal))
        except OnyxiaError as exc:
            # The namespace is there; the web's S3 explorer will say what it lacks.
            log.warning("S3 bucket of %s not made ready: %s", identity.username, exc.detail)
    return Response(status_code=200)


async def profile_schema() -> Response:
    """The operator's user profile form: this platform has none, so the body is empty (what
    Onyxia answers without one; the web then shows no profile form)."""
    return Response(status_code=200)


async def chart_schema(
    catalog_id: CatalogId,
    chart_name: ChartName,
    version: ChartVersion,
    project: OnyxiaProject,
    principal: Reader,
    catalogs: CatalogsDep,
    launch_context: LaunchContextDep,
) -> Any:
    """The chart's values schema as our launch form has it: registry delegations resolved for
    the caller's roles, slider bounds set by the operator, and defaults computed for the
    caller in the project (the web keeps them where its own context has no value). Empty
    when the chart has no schema."""
    visible_catalog(principal, catalogs, catalog_id, project)
    prepared = await prepare_form(
        launch_context, LaunchRequest(principal, project, catalog_id, chart_name, version)
    )
    schema: dict[str, Any] | None = prepared.form.schema
    if schema is None:
        return Response(status_code=200)
    return schema
