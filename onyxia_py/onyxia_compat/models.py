"""The answers of Onyxia's REST API, field for field as the Onyxia web reads them.

Written from the documented API (onyxia-anchor.md sections 1 and 3, and the web's own types):
camelCase where Onyxia uses it, Python names behind aliases. Answers are serialised by alias
and, where Onyxia leaves a field out rather than sending null (the web tells them apart: the
personal project is the one *without* `group`), without the None fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Localized = str | dict[str, str]


class OnyxiaModel(BaseModel):
    """Base of the answers: Onyxia's names on the wire, ours in code."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)


class IpOut(OnyxiaModel):
    """`GET /public/ip`: the caller's address, as the web puts it in `user.ip`."""

    ip: str


class HealthOut(OnyxiaModel):
    """`GET /public/healthcheck` when every catalogue has loaded once."""

    status: str = "UP"


class DependencyOut(OnyxiaModel):
    """A chart a chart needs, as `index.yaml` lists it."""

    name: str
    version: str
    repository: str


class ChartOut(OnyxiaModel):
    """One version of a chart: the fields of its `index.yaml` entry and its default values."""

    name: str
    version: str
    app_version: str = Field(alias="appVersion")
    description: str
    icon: str | None = None
    home: str | None = None
    type: str = Field(description="application or library (the web hides libraries).")
    keywords: list[str]
    annotations: dict[str, str]
    dependencies: list[DependencyOut]
    urls: list[str]
    digest: str
    created: str
    deprecated: bool
    default_values: str = Field(
        alias="defaultValues", description="The chart's values.yaml (YAML text)."
    )


class PackagesOut(OnyxiaModel):
    """The `catalog` member of a catalogue: its newest offered version of each chart."""

    api_version: str = Field("v1", alias="apiVersion")
    generated: str = Field(description="When the repository index was loaded (ISO 8601).")
    latest_packages: dict[str, ChartOut] = Field(alias="latestPackages")


class VisibleOut(OnyxiaModel):
    """In which kinds of projects the web shows the catalogue."""

    user: bool
    project: bool


class CatalogOut(OnyxiaModel):
    """A catalogue as Onyxia serves it: never its credentials or its restrictions."""

    id: str
    name: Localized
    description: Localized
    maintainer: str
    location: str
    status: str
    type: str
    highlighted_charts: list[str] = Field(alias="highlightedCharts")
    excluded_charts: list[str] = Field(alias="excludedCharts")
    include_keywords: list[str] = Field(alias="includeKeywords")
    exclude_keywords: list[str] = Field(alias="excludeKeywords")
    include_annotations: dict[str, str] = Field(alias="includeAnnotations")
    exclude_annotations: dict[str, str] = Field(alias="excludeAnnotations")
    multiple_services_mode: str = Field(alias="multipleServicesMode")
    max_number_of_versions: int = Field(alias="maxNumberOfVersions")
    skip_tls_verify: bool = Field(alias="skipTlsVerify")
    ca_file: str | None = Field(None, alias="caFile")
    allow_sharing: bool = Field(True, alias="allowSharing")
    visible: VisibleOut
    timeout: int
    last_update_time: int = Field(
        alias="lastUpdateTime", description="Last successful load, in ms since the epoch."
    )
    catalog: PackagesOut


class CatalogsOut(OnyxiaModel):
    """`GET /public/catalogs` and `GET /my-lab/catalogs`."""

    catalogs: list[CatalogOut]


class ProjectOut(OnyxiaModel):
    """A project of the caller; the personal one has no `group`."""

    id: str
    group: str | None = None
    namespace: str
    name: str
    vault_top_dir: str = Field(alias="vaultTopDir")
    bucket: str | None = None


class UserInfoOut(OnyxiaModel):
    """`GET /user/info`: the caller and their projects, personal first."""

    idep: str
    email: str | None = None
    nom_complet: str | None = Field(None, alias="nomComplet")
    ip: str
    groups: list[str]
    roles: list[str]
    projects: list[ProjectOut]


class QuotaOut(OnyxiaModel):
    """`GET /my-lab/quota`: the project's ResourceQuota, allowed (`spec`) and used."""

    spec: dict[str, str | int]
    usage: dict[str, str | int]


Schemas = dict[str, dict[str, Any]]


# -- regions and configuration (GET /public/configuration, /public/regions) ----------------------


class OidcConfigurationOut(OnyxiaModel):
    """How the web signs in (PKCE with this client); also a service's own overrides."""

    issuer_uri: str = Field(alias="issuerURI")
    client_id: str = Field(alias="clientID")
    extra_query_params: str = Field("", alias="extraQueryParams")
    scope: str = ""
    idle_session_lifetime_in_seconds: int | None = Field(None, alias="idleSessionLifetimeInSeconds")
    audience: str | None = None


class BuildOut(OnyxiaModel):
    """The server's version; the web only logs it."""

    version: str
    timestamp: int = Field(description="When this server process started (s since the epoch).")


class IstioOut(OnyxiaModel):
    """Istio exposure (`k8s.istio`)."""

    enabled: bool
    gateways: list[str]


class CertManagerOut(OnyxiaModel):
    """cert-manager certificates (`k8s.useCertManager`, `k8s.certManagerClusterIssuer`)."""

    use_cert_manager: bool = Field(alias="useCertManager")
    cert_manager_cluster_issuer: str | None = Field(None, alias="certManagerClusterIssuer")


class ExposeOut(OnyxiaModel):
    """How services are exposed (`services.expose`, read into `k8s.*`)."""

    domain: str
    ingress: bool
    route: bool
    ingress_class_name: str | None = Field(None, alias="ingressClassName")
    ingress_port: int | None = Field(
        None, alias="ingressPort", description="The port service URLs carry, if any."
    )
    istio: IstioOut
    cert_manager: CertManagerOut = Field(alias="certManager")


class QuotasOut(OnyxiaModel):
    """The ResourceQuota projects get (`services.quotas`)."""

    user_enabled: bool = Field(alias="userEnabled")
    user: dict[str, str]
    roles: dict[str, dict[str, str]]
    group_enabled: bool = Field(alias="groupEnabled")
    group: dict[str, str]


class K8sPublicEndpointOut(OnyxiaModel):
    """The API server users may reach with kubectl (Account > Kubernetes)."""

    url: str = Field(alias="URL")


class RegionServicesOut(OnyxiaModel):
    """A region's `services`: namespaces, exposure, quotas. Never `server` (credentials) and
    never the legacy `defaultConfiguration`."""

    type: str = "KUBERNETES"
    single_namespace: bool = Field(False, alias="singleNamespace")
    allow_namespace_creation: bool = Field(True, alias="allowNamespaceCreation")
    user_namespace: bool = Field(True, alias="userNamespace")
    namespace_prefix: str = Field(alias="namespacePrefix")
    group_namespace_prefix: str = Field(alias="groupNamespacePrefix")
    username_prefix: str = Field(alias="usernamePrefix")
    group_prefix: str = Field(alias="groupPrefix")
    namespace_labels: dict[str, str] = Field(alias="namespaceLabels")
    namespace_annotations: dict[str, str] = Field(alias="namespaceAnnotations")
    authentication_mode: str = Field("impersonate", alias="authenticationMode")
    quotas: QuotasOut
    expose: ExposeOut
    allowed_uri_pattern: str = Field(alias="allowedURIPattern")
    k8s_public_endpoint: K8sPublicEndpointOut | None = Field(None, alias="k8sPublicEndpoint")
    # Legacy keys (removed from Onyxia's API in 2024) that the web still reads into the context.
    custom_values: dict[str, Any] = Field(alias="customValues")
    init_script: str = Field(alias="initScript")


class StsRoleOut(OnyxiaModel):
    """A role the web assumes with its own access token; with `claimName`, `$1` in the names
    is the claim's value matched by `includedClaimPattern` (one profile per match)."""

    role_arn: str = Field(alias="roleARN")
    role_session_name: str = Field(alias="roleSessionName")
    profile_name: str = Field(alias="profileName")
    claim_name: str | None = Field(None, alias="claimName")
    included_claim_pattern: str | None = Field(None, alias="includedClaimPattern")


class StsOut(OnyxiaModel):
    """Where and how the web mints its S3 credentials (AssumeRoleWithWebIdentity)."""

    url: str = Field(alias="URL")
    duration_seconds: int = Field(alias="durationSeconds")
    role: StsRoleOut
    oidc_configuration: OidcConfigurationOut | None = Field(None, alias="oidcConfiguration")


class BookmarkOut(OnyxiaModel):
    """A folder the web's explorer offers (`$1`: the claim's value, as for roles)."""

    s3_uri: str = Field(alias="s3Uri")
    title: Localized
    claim_name: str | None = Field(None, alias="claimName")
    included_claim_pattern: str | None = Field(None, alias="includedClaimPattern")


class S3Out(OnyxiaModel):
    """One entry of `data.S3`; with `sts` it is a region S3 profile, without it only the
    defaults of the web's "new S3 profile" form."""

    url: str = Field(alias="URL")
    region: str
    path_style_access: bool = Field(alias="pathStyleAccess")
    sts: StsOut | None = None
    bookmarks: list[BookmarkOut] = Field(default_factory=list)


class RegionDataOut(OnyxiaModel):
    """A region's `data` (opaque to Onyxia's API, read by the web)."""

    s3: list[S3Out] = Field(alias="S3")


class ProxyInjectionOut(OnyxiaModel):
    """`proxyInjection`: the HTTP proxy services get."""

    enabled: bool | None = None
    http_proxy_url: str | None = Field(None, alias="httpProxyUrl")
    https_proxy_url: str | None = Field(None, alias="httpsProxyUrl")
    no_proxy: str | None = Field(None, alias="noProxy")


class PackageRepositoryInjectionOut(OnyxiaModel):
    """`packageRepositoryInjection`: the package mirrors services get."""

    cran_proxy_url: str | None = Field(None, alias="cranProxyUrl")
    conda_proxy_url: str | None = Field(None, alias="condaProxyUrl")
    package_manager_url: str | None = Field(None, alias="packageManagerUrl")
    pypi_proxy_url: str | None = Field(None, alias="pypiProxyUrl")


class CertificateAuthorityInjectionOut(OnyxiaModel):
    """`certificateAuthorityInjection`: the CA bundle services get."""

    cacerts: str | None = None
    path_to_ca_bundle: str | None = Field(None, alias="pathToCaBundle")


class RegionOut(OnyxiaModel):
    """A region as Onyxia serves it (the one region of this platform)."""

    id: str
    name: str
    description: str
    services: RegionServicesOut
    data: RegionDataOut | None = None
    proxy_injection: ProxyInjectionOut | None = Field(None, alias="proxyInjection")
    package_repository_injection: PackageRepositoryInjectionOut | None = Field(
        None, alias="packageRepositoryInjection"
    )
    certificate_authority_injection: CertificateAuthorityInjectionOut | None = Field(
        None, alias="certificateAuthorityInjection"
    )


class ConfigurationOut(OnyxiaModel):
    """`GET /public/configuration`: the web's first call. Without `oidcConfiguration` (auth
    mode none) the web signs nobody in and sends a placeholder token."""

    build: BuildOut
    regions: list[RegionOut]
    oidc_configuration: OidcConfigurationOut | None = Field(None, alias="oidcConfiguration")


class OnboardingIn(OnyxiaModel):
    """`POST /onboarding`: the group whose project to bring up; none: the personal one."""

    group: str | None = Field(None, max_length=253)


# -- services (onyxia_compat/services.py) -----------------------------------------------------


class TaskStatusOut(OnyxiaModel):
    """A pod's phase and the first reason one of its containers waits."""

    status: str
    reason: str | None = None


class TaskContainerOut(OnyxiaModel):
    """A container of a pod and whether it is ready."""

    name: str
    ready: bool


class TaskOut(OnyxiaModel):
    """A pod of the service (`id` is its name, what `/my-lab/app/logs?taskId=` takes)."""

    id: str
    status: TaskStatusOut
    containers: list[TaskContainerOut]


class ControllerDetailsOut(OnyxiaModel):
    """Replicas wanted and ready."""

    desired: int
    ready: int


class ControllerOut(OnyxiaModel):
    """A Deployment or StatefulSet of the service."""

    name: str
    kind: str
    healthy: bool
    details: ControllerDetailsOut


class ServiceOut(OnyxiaModel):
    """Onyxia's `Service`, field for field as the web reads it."""

    id: str
    name: str
    subtitle: str = Field(description="The chart's name.")
    namespace: str
    revision: str
    status: str = Field(description="Helm's status: deployed, pending-install, failed, ...")
    updated: str
    chart: str = Field(description="`<chart>-<version>`.")
    app_version: str = Field(alias="appVersion")
    started_at: int = Field(alias="startedAt", description="Last launch or resume, in ms.")
    urls: list[str]
    env: dict[str, str] = Field(description="The values the user set, flattened (`a.b.c`).")
    tasks: list[TaskOut]
    controllers: list[ControllerOut]
    post_install_instructions: str | None = Field(None, alias="postInstallInstructions")
    suspendable: bool
    suspended: bool
    catalog_id: str = Field(alias="catalogId")
    owner: str
    friendly_name: str = Field(alias="friendlyName")
    share: bool
    instances: int = 1


class ServicesOut(OnyxiaModel):
    """`GET /my-lab/services`."""

    apps: list[ServiceOut]
    groups: list[Any] = Field(default_factory=list, description="Always empty (deprecated).")


class OnyxiaIn(BaseModel):
    """Base of the request bodies: Onyxia's names on the wire; unknown members ignored."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)


class CreateServiceIn(OnyxiaIn):
    """`PUT /my-lab/app`: Onyxia's `CreateServiceDTO`."""

    catalog_id: str = Field("internal", alias="catalogId", max_length=63)
    package_name: str = Field(alias="packageName", max_length=253)
    package_version: str | None = Field(None, alias="packageVersion", max_length=64)
    name: str | None = Field(None, max_length=53, description="The release name (the web's).")
    options: dict[str, Any] = Field(default_factory=dict, description="The chart's values.")
    dry_run: bool = Field(False, alias="dryRun", description="Only check; nothing is made.")
    share: bool = False
    friendly_name: str | None = Field(None, alias="friendlyName", max_length=100)


class InstalledOut(OnyxiaModel):
    """What `PUT /my-lab/app` answers, one per release (Onyxia answers the manifests, which
    the web does not read): the install goes on in the background."""

    name: str
    namespace: str
    version: str
    status: str = Field(description="pending-install, or dry-run.")
    warning: str | None = None


class ServiceRefIn(OnyxiaIn):
    """`POST /my-lab/app/suspend` and `/resume`."""

    service_id: str = Field(alias="serviceID", max_length=53)


class RenameIn(ServiceRefIn):
    """`POST /my-lab/app/rename`."""

    friendly_name: str = Field(alias="friendlyName", min_length=1, max_length=100)


class ShareIn(ServiceRefIn):
    """`POST /my-lab/app/share`."""

    share: bool


class DeletedOut(OnyxiaModel):
    """`DELETE /my-lab/app`."""

    path: str
    success: bool
