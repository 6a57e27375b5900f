"""From (user, project, catalogue, chart, version) to a launch form and to enforced values:
everything a browser could forge is computed here, on the server."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from onyxia_py.accounts.models import Principal
from onyxia_py.catalog.context import (
    ContextProject,
    ContextRegion,
    ContextS3,
    ContextUser,
    build_context,
)
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.form import LaunchForm, launch_form, with_image
from onyxia_py.catalog.models import ChartFiles
from onyxia_py.catalog.schema import SchemaRegistry, resolve_schema
from onyxia_py.catalog.sliders import slider_policy
from onyxia_py.catalog.values import launch_values
from onyxia_py.projects.models import Project
from onyxia_py.settings import CatalogSettings, RegionSettings


@dataclass(frozen=True)
class LaunchContext:
    """What computing forms and values needs, built once by the composition root."""

    catalogs: Catalogs
    registry: SchemaRegistry
    region: RegionSettings
    settings: CatalogSettings
    # Project passwords are derived from this secret: stable per project, never stored.
    project_secret: bytes


@dataclass(frozen=True)
class LaunchRequest:
    """Who launches what, where."""

    principal: Principal
    project: Project
    catalog: str
    chart: str
    version: str | None
    # The S3 profile for `s3.*` (credentials minted for a launch); None: no S3 in the context.
    s3: ContextS3 | None = None


@dataclass(frozen=True)
class PreparedForm:
    """A launch form for one chart version, and the chart files it came from."""

    version: str
    form: LaunchForm
    files: ChartFiles

    @property
    def readme(self) -> str:
        """The chart's README."""
        return self.files.readme


def project_password(project: Project, secret: bytes) -> str:
    """The project's service password (`project.password`): stable, unguessable, not stored."""
    return hmac.new(secret, project.id.encode(), hashlib.sha256).hexdigest()[:20]


def region_context(region: RegionSettings, roles: Iterable[str] = ()) -> ContextRegion:
    """The region part of the onyxia context, for a user with `roles` (slider bounds)."""
    return ContextRegion(
        domain=region.domain,
        ingress_class=region.ingress_class,
        ingress=region.ingress,
        route=region.route,
        istio={"enabled": region.istio_enabled, "gateways": list(region.istio_gateways)},
        use_cert_manager=region.use_cert_manager,
        cert_manager_issuer=region.cert_manager_issuer,
        init_script_url=region.init_script_url,
        resources=region.resources,
        tolerations=region.tolerations,
        node_selector=region.node_selector,
        default_network_policy=region.default_network_policy,
        network_policy_from=region.network_policy_from,
        allowed_uri_pattern=region.allowed_uri_pattern,
        oauth2=region.oauth2,
        custom_values=region.custom_values,
        sliders=slider_policy(region, roles).effective(),
        kubernetes_enabled=region.kubernetes_enabled,
        kubernetes_role=region.kubernetes_role,
        proxy=region.proxy,
        package_repositories=region.package_repositories,
        certificate_authority=region.certificate_authority,
        certificate_authority_path=region.certificate_authority_path,
        extra={},
    )


def onyxia_context(ctx: LaunchContext, request: LaunchRequest) -> dict[str, Any]:
    """The onyxia context of this user in this project."""
    identity = request.principal.identity
    user = ContextUser(
        idep=identity.username,
        name=identity.username,
        email=identity.email,
        groups=identity.groups,
        roles=identity.roles,
        lang="en",
        ip=None,
        decoded_id_token={},
        profile={},
    )
    project = ContextProject(
        id=request.project.id,
        namespace=request.project.namespace,
        group=request.project.group,
        password=project_password(request.project, ctx.project_secret),
    )
    return build_context(
        user,
        project,
        region_context(ctx.region, identity.roles),
        s3=request.s3,
    )


async def prepare_form(ctx: LaunchContext, request: LaunchRequest) -> PreparedForm:
    """The resolved schema with defaults computed for this user and project."""
    version = ctx.catalogs.version(request.catalog, request.chart, request.version)
    files = await ctx.catalogs.chart_files(request.catalog, request.chart, version.version)
    roles = request.principal.identity.roles
    schema = (
        resolve_schema(files.schema, ctx.registry, roles, slider_policy(ctx.region, roles))
        if files.schema is not None
        else None
    )
    form = launch_form(schema, files.values, onyxia_context(ctx, request))
    image = ctx.settings.image_overrides.get(request.chart)
    if image:
        form = with_image(form, image)
    return PreparedForm(version.version, form, files)


async def prepare_values(
    ctx: LaunchContext, request: LaunchRequest, overrides: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The values a launch would install: defaults plus overrides, enforced; Invalid if not."""
    prepared = await prepare_form(ctx, request)
    values = launch_values(prepared.form, overrides, chart_schema=prepared.files.schema)
    return prepared.version, values
