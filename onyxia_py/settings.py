"""The one settings object of onyxia-py.

Values come, highest priority first, from: arguments passed in code, environment variables
prefixed `ONYXIA_` (nested groups with `__`, e.g. `ONYXIA_DATABASE__URL`), the YAML file named by
`ONYXIA_CONFIG`, then the defaults below. Every field's description is its documentation:
`docs/configuration.md` is generated from it (`python -m onyxia_py config-docs`).

Settings are built once in the composition root and passed in; nothing imports a global.
"""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

# A placeholder that marks "nobody chose a secret": accepted only in dev mode or on localhost.
DEFAULT_SESSION_SECRET = "insecure-dev-session-secret-change-me"  # noqa: S105


class Group(BaseModel):
    """Base of every settings group: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LogFormat(StrEnum):
    """How log lines are written."""

    PLAIN = "plain"
    JSON = "json"


class ServerSettings(Group):
    """The HTTP server."""

    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port the HTTP server listens on.")
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The URL users reach the platform at (used for redirects and cookies).",
    )
    session_secret: SecretStr = Field(
        SecretStr(DEFAULT_SESSION_SECRET),
        description="Secret behind project passwords and the sealing of stored provider "
        "tokens; at least 32 characters. Required with auth mode oidc. Unset in auth mode none: "
        "one is generated per installation and kept in server.session_secret_file.",
    )
    session_secret_file: Path | None = Field(
        None,
        description="Auth mode none without server.session_secret: the file (mode 0600) "
        "holding the generated secret. Unset: onyxia-session-secret beside the SQLite "
        "database file, else ~/.local/share/onyxia-py/session-secret.",
    )
    log_format: LogFormat = Field(LogFormat.PLAIN, description="Log line format: plain or json.")
    log_level: str = Field("INFO", description="Minimum level of log lines (DEBUG, INFO, ...).")
    access_log: bool = Field(True, description="Write one log line per HTTP request.")
    trust_request_id: bool = Field(
        True,
        description="Reuse a well-formed incoming X-Request-ID header instead of making one.",
    )


class DatabaseSettings(Group):
    """The SQL database."""

    url: SecretStr = Field(
        SecretStr("sqlite+aiosqlite:///./onyxia.db"),
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or "
        "postgresql+asyncpg://user:password@host/db.",
    )
    migrate_on_start: bool = Field(
        True, description="Apply Alembic migrations when the server starts."
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    pool_size: int = Field(5, ge=1, description="Connections kept open (PostgreSQL only).")
    connect_timeout_seconds: float = Field(
        5.0, gt=0, description="Longest wait to open a connection to PostgreSQL."
    )
    pool_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Longest wait for a pooled connection when all are in use (PostgreSQL).",
    )
    statement_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest one statement may take: PostgreSQL's statement_timeout and the "
        "client's command timeout (which also bounds the pre-ping of a pooled connection); on "
        "SQLite, the wait for a locked database (busy timeout).",
    )
    operation_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Longest one unit of database work (connection, statements, commit) may "
        "take, whatever it waits on; past it, as when the database is down, the request "
        "answers 503.",
    )
    retry_after_seconds: int = Field(
        5, ge=1, description="The Retry-After of a 503 answered while the database is unavailable."
    )


class KubernetesSettings(Group):
    """The Kubernetes cluster services run in."""

    kubeconfig: Path | None = Field(
        None,
        description="Kubeconfig file; unset means KUBECONFIG, then ~/.kube/config, "
        "then the in-cluster service account.",
    )
    context: str | None = Field(None, description="Kubeconfig context to use; unset: current.")
    request_timeout_seconds: float = Field(
        15.0, gt=0, description="Timeout of one Kubernetes API call."
    )
    readiness_timeout_seconds: float = Field(
        3.0, gt=0, description="Timeout of the Kubernetes check behind /readyz."
    )
    public_url: str | None = Field(
        None,
        description="The API server URL users can reach; set, the account page offers a "
        "kubeconfig for their namespace carrying their OIDC access token (the API server must "
        "accept it: --oidc-issuer-url, --oidc-client-id = its audience, and the same username "
        "claim and prefix as projects.kubernetes_user_prefix).",
    )
    public_ca_pem: str | None = Field(
        None, description="PEM certificate(s) of the CA behind public_url (unset: system CAs)."
    )


class HelmSettings(Group):
    """The Helm engine (in-process Helm v4)."""

    timeout_seconds: int = Field(600, ge=1, description="Maximum duration of one install.")
    max_history: int = Field(
        10, ge=1, description="Revisions kept per release on upgrade (older ones are pruned)."
    )
    storage_driver: str = Field(
        "secret", description="Helm release storage: secret, configmap or memory."
    )
    max_concurrent_operations: int = Field(
        32,
        ge=1,
        le=256,
        description="Helm operations running at once (installs wait for readiness in a thread).",
    )


class AuthMode(StrEnum):
    """How users are authenticated."""

    NONE = "none"
    OIDC = "oidc"


class AuthSettings(Group):
    """Authentication."""

    mode: AuthMode = Field(
        AuthMode.NONE,
        description="none: a single local admin user (localhost or dev mode only); "
        "oidc: OpenID Connect.",
    )
    local_username: str = Field("onyxia", description="The single user of auth mode none.")
    issuer_url: str | None = Field(None, description="OIDC issuer URL (discovery base).")
    client_id: str | None = Field(None, description="OIDC client id of the platform.")
    client_secret: SecretStr | None = Field(None, description="OIDC client secret, if any.")
    audience: str | None = Field(
        None, description="Expected `aud` of bearer tokens; unset: the client id."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="Scopes asked for at login (add e.g. groups or offline_access if needed).",
    )
    username_claim: str = Field("preferred_username", description="Claim giving the username.")
    groups_claim: str = Field(
        "groups", description="Claim listing the user's groups (dotted path for nested claims)."
    )
    roles_claim: str = Field(
        "roles",
        description="Claim listing the user's roles (dotted path, e.g. realm_access.roles).",
    )
    email_claim: str = Field("email", description="Claim giving the user's email.")
    require_verified_email: bool = Field(
        False,
        description="Refuse users whose email_verified claim is not true (otherwise an "
        "unverified email is ignored).",
    )
    admin_role: str = Field("admin", description="Role that grants the admin API and pages.")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"],
        description="Signature algorithms accepted on tokens (never none, never HMAC).",
    )
    leeway_seconds: int = Field(
        30, ge=0, le=300, description="Clock skew tolerated on token exp/nbf/iat."
    )
    http_timeout_seconds: float = Field(
        10.0, gt=0, description="Timeout of calls to the OpenID Provider."
    )
    jwks_min_refresh_seconds: float = Field(
        10.0, ge=0, description="Minimum delay between two JWKS fetches caused by unknown keys."
    )
    token_encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys sealing provider tokens at rest; the first encrypts, all decrypt "
        "(rotation). Unset: derived from server.session_secret.",
    )
    session_max_lifetime_seconds: int = Field(
        43200, ge=300, description="A session ends after this long even if tokens refresh."
    )
    session_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a replica keeps a session it looked up in memory, instead of "
        "asking the database on every request; a session ended on another replica (logout, "
        "refresh refused) still works here for up to this long, on this one it ends at once. "
        "0: no cache.",
    )
    api_token_default_days: int = Field(30, ge=1, description="Lifetime of a new API token.")
    api_token_max_days: int = Field(
        365, ge=1, description="Longest lifetime a user may ask for an API token."
    )
    roles_recheck_seconds: int = Field(
        900,
        ge=1,
        le=3600,
        description="How stale a user's groups and roles may be when an API token with more "
        "than read scope is used; older, the provider is asked again (a refresh token).",
    )

    @model_validator(mode="after")
    def _oidc_needs_issuer(self) -> Self:
        if self.mode is AuthMode.OIDC and not (self.issuer_url and self.client_id):
            raise ValueError("auth mode oidc needs auth.issuer_url and auth.client_id")
        unsafe = [a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if unsafe:
            raise ValueError(f"auth.algorithms must not allow {', '.join(unsafe)}")
        if self.api_token_default_days > self.api_token_max_days:
            raise ValueError("auth.api_token_default_days exceeds auth.api_token_max_days")
        return self


class S3CredentialsMode(StrEnum):
    """How temporary S3 credentials are minted for a user."""

    WEB_IDENTITY = "web-identity"
    ASSUME_ROLE = "assume-role"


class S3Settings(Group):
    """Object storage: temporary S3 credentials per user (STS), injected into services and
    renewed while they run, and the bucket browser. See docs/s3.md for RGW, MinIO and AWS."""

    enabled: bool = Field(False, description="Offer S3 storage and inject credentials.")
    endpoint_url: str | None = Field(
        None, description="S3 endpoint URL (scheme, host and port), as services reach it."
    )
    region: str = Field("us-east-1", description="S3 region.")
    path_style: bool = Field(
        True, description="Path-style bucket addressing (RGW, MinIO); false for virtual hosts."
    )
    verify_tls: bool = Field(True, description="Check the S3 and STS servers' certificates.")
    sts_endpoint_url: str | None = Field(
        None, description="STS endpoint; unset: the S3 endpoint (AWS: https://sts.amazonaws.com)."
    )
    public_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint as browsers reach it (the Onyxia web's own S3 calls); unset: "
        "endpoint_url.",
    )
    public_sts_endpoint_url: str | None = Field(
        None,
        description="STS endpoint as browsers reach it (the Onyxia web's own STS call); unset: "
        "sts_endpoint_url, else the public S3 endpoint.",
    )
    bucket_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed to call S3 from a browser (the "
        "Onyxia web's S3 explorer): written as the CORS rules of each bucket onyxia-py creates "
        "or first uses (PutBucketCors, replacing the bucket's rules); empty: bucket CORS is "
        "left alone.",
    )
    credentials_mode: S3CredentialsMode = Field(
        S3CredentialsMode.WEB_IDENTITY,
        description="web-identity: AssumeRoleWithWebIdentity with the user's OIDC access "
        "token; assume-role: AssumeRole with the platform key and a session policy limiting "
        "the result to the user's buckets (for servers without web identity).",
    )
    role_arn: str | None = Field(
        None,
        description="Role to assume; `{username}` is replaced by the user's name as it appears "
        "in bucket names (e.g. arn:aws:iam:::role/onyxia-{username} for one role per user).",
    )
    role_session_name: str = Field(
        "onyxia-{username}", description="Session name template (`{username}`), 2-64 characters."
    )
    duration_seconds: int = Field(
        43200, ge=900, description="Lifetime of temporary credentials (servers refuse < 900)."
    )
    user_bucket_prefix: str = Field(
        "user-", description="Personal bucket of each user: this prefix + the username."
    )
    group_bucket_prefix: str = Field(
        "projet-", description="Bucket of each group project: this prefix + the group name."
    )
    access_key_id: SecretStr | None = Field(
        None,
        description="The platform's own key: signs AssumeRole (assume-role mode) and role "
        "provisioning (provision_roles). Never given to users.",
    )
    secret_access_key: SecretStr | None = Field(None, description="Secret of the platform's key.")
    provision_roles: bool = Field(
        False,
        description="Create or update one IAM role per user (role_arn must hold `{username}`): "
        "trusting only that user's OIDC subject, allowing only their buckets (Ceph RGW).",
    )
    oidc_provider_arn: str | None = Field(
        None,
        description="Identity provider ARN named in provisioned trust policies; unset: "
        "arn:aws:iam:::oidc-provider/<auth.issuer_url without scheme>.",
    )
    refresh_interval_seconds: float = Field(
        60.0, gt=0, description="How often running services' credentials are checked."
    )
    refresh_before_seconds: int = Field(
        3600,
        ge=0,
        description="Credentials of a running service are renewed when they have less than "
        "this left (keep it below duration_seconds).",
    )
    presign_max_seconds: int = Field(
        604800, ge=1, le=604800, description="Longest expiry users may give a download link."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of one S3, STS or IAM call."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        check_origins("s3.bucket_cors_origins", self.bucket_cors_origins)
        if not self.enabled:
            return self
        if not self.endpoint_url:
            raise ValueError("s3.enabled needs s3.endpoint_url")
        if not self.role_arn:
            raise ValueError("s3.enabled needs s3.role_arn")
        platform_key = self.access_key_id is not None and self.secret_access_key is not None
        if self.credentials_mode is S3CredentialsMode.ASSUME_ROLE and not platform_key:
            raise ValueError("s3 credentials_mode assume-role needs s3.access_key_id and secret")
        if self.provision_roles and not (platform_key and "{username}" in self.role_arn):
            raise ValueError(
                "s3.provision_roles needs the platform key and {username} in s3.role_arn"
            )
        if self.refresh_before_seconds >= self.duration_seconds:
            raise ValueError("s3.refresh_before_seconds must be below s3.duration_seconds")
        return self

    @property
    def browser_endpoint_url(self) -> str | None:
        """The S3 endpoint as browsers reach it."""
        return self.public_endpoint_url or self.endpoint_url

    @property
    def browser_sts_endpoint_url(self) -> str | None:
        """The STS endpoint as browsers reach it."""
        return self.public_sts_endpoint_url or self.sts_endpoint_url or self.browser_endpoint_url


class CatalogSettings(Group):
    """Catalogues of charts."""

    paths: list[Path] = Field(
        default_factory=lambda: [Path("catalog")],
        description="Files or folders of catalogue definitions (YAML); relative locations in "
        "them are relative to their file.",
    )
    definitions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Catalogues declared here rather than in files (same fields, Onyxia names).",
    )
    refresh_interval_seconds: int = Field(
        600,
        ge=10,
        description="How often the leader reloads every catalogue (the other replicas reload "
        "those whose index changed) and each replica retries those it failed to load.",
    )
    sync_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often each replica asks the database which catalogues changed "
        "(made, changed or removed by an administrator on any replica, or reloaded with a new "
        "index by the leader).",
    )
    cache_dir: Path = Field(
        Path(".cache/charts"), description="Where downloaded chart packages are cached."
    )
    schemas_dir: Path | None = Field(
        None,
        description="Admin folder of schemas for x-onyxia.overwriteSchemaWith "
        "(<key>.json, and roles/<role>/<key>.json per role); bundled ones apply otherwise.",
    )
    fetch_concurrency: int = Field(
        8, ge=1, le=64, description="Chart packages downloaded at once per catalogue."
    )
    http_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Deadline of one whole download from a chart repository or an icon's host "
        "(redirects included), and of each call to an OCI registry.",
    )
    http_connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Time to open a connection to a chart repository or icon host."
    )
    max_index_bytes: int = Field(
        64 << 20, ge=1024, description="Largest repository index.yaml downloaded, in bytes."
    )
    max_package_bytes: int = Field(
        32 << 20, ge=1024, description="Largest chart package downloaded or pulled, in bytes."
    )
    image_overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Image per chart name, set as the default of service.image.version (e.g. "
        "images from your own registry; the local platform sets its locally built ones).",
    )


class SliderBounds(Group):
    """Bounds of one kind of slider (Onyxia's region.sliders.<name>): unset ones stay as
    the schema has them."""

    min: float | None = Field(None, description="Lowest value the slider offers.")
    max: float | None = Field(None, description="Highest value the slider offers and accepts.")
    step: float | None = Field(None, description="Step of the slider.")
    unit: str | None = Field(
        None,
        description="Unit of these numbers (m, Gi, Mi...); unset: the schema's own. They are "
        "converted to the unit the schema's slider shows.",
    )


def _ingress_namespace_peer() -> list[dict[str, Any]]:
    return [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]


class RegionSettings(Group):
    """The region: how services are exposed and what the onyxia context tells charts."""

    domain: str = Field("lab.127.0.0.1.nip.io", description="Domain of service URLs (k8s.domain).")
    ingress_class: str | None = Field(
        None,
        description="Ingress class name for services (k8s.ingressClassName); unset: "
        "charts keep their default (usually the cluster's default class).",
    )
    ingress: bool = Field(True, description="Expose services with Ingress objects (k8s.ingress).")
    service_url_template: str = Field(
        "https://{host}",
        description="A service's URL from its Ingress host ({host}); the local platform, whose "
        "ingress serves plain HTTP on a port of 127.0.0.1, uses http://{host}:PORT.",
    )
    route: bool = Field(False, description="Expose services with OpenShift Routes (k8s.route).")
    istio_enabled: bool = Field(
        False, description="Expose services through Istio (k8s.istio.enabled)."
    )
    istio_gateways: list[str] = Field(
        default_factory=list,
        description="Istio gateways services' VirtualServices attach to (k8s.istio.gateways).",
    )
    use_cert_manager: bool = Field(
        False, description="Ask cert-manager for certificates (k8s.useCertManager)."
    )
    cert_manager_issuer: str | None = Field(
        None, description="cert-manager ClusterIssuer name (k8s.certManagerClusterIssuer)."
    )
    init_script_url: str = Field(
        "", description="Script services run at start (k8s.initScriptUrl)."
    )
    default_network_policy: bool = Field(
        True, description="Charts create their default NetworkPolicy (region.defaultNetworkPolicy)."
    )
    network_policy_from: list[dict[str, Any]] = Field(
        default_factory=_ingress_namespace_peer,
        description="NetworkPolicy peers (namespaceSelector/podSelector/ipBlock objects) charts "
        "admit besides the namespace's own pods (region.from); the default is the ingress "
        "controller's namespace: keep it in step with projects.ingress_namespace.",
    )
    allowed_uri_pattern: str = Field(
        "^https://", description="Pattern of URIs users may give charts (region.allowedURIPattern)."
    )
    oauth2: dict[str, Any] = Field(
        default_factory=dict,
        description="OAuth2 client settings for charts that log their users in themselves "
        "(region.oauth2, e.g. {clientId: ..., issuerURI: ...}); empty: charts keep their "
        "defaults. Never put a client secret here: every user's launch can read it.",
    )
    custom_values: dict[str, Any] = Field(
        default_factory=dict,
        description="Site-specific values charts may read (region.customValues).",
    )
    resources: dict[str, Any] = Field(
        default_factory=dict,
        description="Default resources offered to charts (region.resources: cpuRequest, "
        "cpuLimit, memoryRequest, memoryLimit, disk, gpu).",
    )
    sliders: dict[str, SliderBounds] = Field(
        default_factory=dict,
        description="Bounds of the launch form's sliders by name (cpu, memory, disk, gpu: "
        "x-onyxia.useRegionSliderConfig, else the slider's sliderRangeId), each {min, max, "
        "step, unit}, e.g. {cpu: {max: 16000, unit: m}}; the launch refuses values beyond them "
        "and a chart's own bounds stay the outer limit (region.sliders).",
    )
    role_sliders: dict[str, dict[str, SliderBounds]] = Field(
        default_factory=dict,
        description="Slider bounds per role, over region.sliders (the first of the user's "
        "roles in sorted order that sets a bound wins), e.g. {gpu-users: {memory: {max: 128, "
        "unit: Gi}}}.",
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations charts add (region.tolerations)."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector charts add (region.nodeSelector)."
    )
    kubernetes_enabled: bool = Field(
        True,
        description="Default of a service's access to the Kubernetes API of its project "
        "(kubernetes.enabled; the bundled ide/role.json).",
    )
    kubernetes_role: Literal["view", "edit", "admin"] = Field(
        "view",
        description="Default ClusterRole a service's account gets in its project "
        "(kubernetes.role; the bundled ide/role.json).",
    )
    proxy: dict[str, Any] | None = Field(
        None,
        description="HTTP proxy to inject (proxyInjection: enabled, httpProxyUrl, "
        "httpsProxyUrl, noProxy); unset: none.",
    )
    package_repositories: dict[str, Any] | None = Field(
        None,
        description="Package mirrors to inject (packageRepositoryInjection: pypiProxyUrl, "
        "condaProxyUrl, cranProxyUrl, packageManagerUrl); unset: none.",
    )
    certificate_authority: str | None = Field(
        None,
        description="CA bundle to inject (certificateAuthorityInjection.cacerts), given to "
        "charts as written (Onyxia charts expect it base64-encoded); unset: none.",
    )
    certificate_authority_path: str | None = Field(
        None,
        description="Where services find the CA bundle in their image "
        "(certificateAuthorityInjection.pathToCaBundle); unset: not given.",
    )


class ProjectSettings(Group):
    """Projects: personal and group namespaces."""

    user_namespace_prefix: str = Field("user-", description="Prefix of personal namespaces.")
    group_namespace_prefix: str = Field("projet-", description="Prefix of group namespaces.")
    group_name_pattern: str | None = Field(
        None, description="Regex applied to group names before they become projects."
    )
    group_name_replacement: str = Field("", description="Replacement for group_name_pattern.")
    namespace_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to every project namespace."
    )
    namespace_annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to every project namespace."
    )
    pod_security: Literal["restricted", "baseline", "privileged", ""] = Field(
        "restricted",
        description="Pod Security Standard enforced on project namespaces (labels "
        "pod-security.kubernetes.io/enforce, warn and audit); empty leaves them unlabelled.",
    )
    kubernetes_user_prefix: str = Field(
        "",
        description="Prefix of the Kubernetes user a person acts as (match the API server's "
        "--oidc-username-prefix when it trusts the same provider).",
    )
    kubernetes_group_prefix: str = Field(
        "", description="Prefix of the Kubernetes groups a person acts with."
    )
    quota_enabled: bool = Field(True, description="Give each project a ResourceQuota.")
    user_quota: dict[str, str] = Field(
        default_factory=lambda: {
            "requests.cpu": "8",
            "requests.memory": "32Gi",
            "limits.cpu": "16",
            "limits.memory": "64Gi",
            "requests.storage": "200Gi",
            "count/pods": "50",
            "requests.nvidia.com/gpu": "1",
        },
        description="ResourceQuota of personal projects (keys as in a ResourceQuota's hard).",
    )
    group_quota: dict[str, str] = Field(
        default_factory=lambda: {
            "requests.cpu": "32",
            "requests.memory": "128Gi",
            "limits.cpu": "64",
            "limits.memory": "256Gi",
            "requests.storage": "1Ti",
            "count/pods": "200",
            "requests.nvidia.com/gpu": "4",
        },
        description="ResourceQuota of group projects.",
    )
    role_quotas: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Personal quota per role (first of the user's roles in sorted order wins).",
    )
    limit_range: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
            "default": {"cpu": "2", "memory": "4Gi"},
        },
        description="Container defaults of each project's LimitRange (empty: no LimitRange).",
    )
    network_policy: bool = Field(
        True,
        description="Give each project a NetworkPolicy refusing traffic from other namespaces "
        "(the ingress controller's namespace excepted).",
    )
    ingress_namespace: str = Field(
        "ingress-nginx", description="Namespace of the ingress controller (allowed in)."
    )


class ServiceSettings(Group):
    """Launched services: how long they may run before being suspended."""

    max_running_hours: float | None = Field(
        168.0, gt=0, description="Services are suspended after running this long (unset: never)."
    )
    gpu_max_running_hours: float | None = Field(
        24.0, gt=0, description="The same for services holding GPUs (unset: the general limit)."
    )
    warning_minutes: float = Field(
        30.0, ge=0, description="How long before the suspension a warning Event is posted."
    )
    culling_interval_seconds: float = Field(
        60.0, gt=0, description="How often running times are checked."
    )
    launch_cleanup_seconds: float = Field(
        120.0,
        gt=0,
        description="Time a failed launch gets to roll back: every launch ends, running or "
        "failed with a reason, within helm.timeout_seconds plus this.",
    )
    reconcile_interval_seconds: float = Field(
        30.0,
        gt=0,
        description="How often interrupted launches (a release left pending, metadata without "
        "a release, a release without metadata) are found and brought to an end.",
    )


class LeaderElectionSettings(Group):
    """Leader election: the replica holding a Kubernetes Lease runs the background jobs."""

    enabled: bool = Field(
        True,
        description="Elect the replica that runs the background jobs with a Lease; false: this "
        "process runs them without asking (one replica only).",
    )
    lease_name: str | None = Field(
        None,
        description="Name of the Lease; unset: onyxia-py-<hash of database.url without its "
        "password>, so the replicas that share a database share a Lease.",
    )
    lease_namespace: str | None = Field(
        None,
        description="Namespace of the Lease, and of the audit outbox (ConfigMaps holding "
        "the audit rows of changes made while the database was away, until the leader delivers "
        "them); unset: the pod's own (its service account's), else default.",
    )
    identity: str | None = Field(
        None,
        description="This replica's name in the Lease; unset: the host name (a pod's name) "
        "and a random suffix.",
    )
    lease_duration_seconds: int = Field(
        15,
        ge=1,
        description="How long the other replicas wait for a leader that stopped renewing: a "
        "successor takes over within about this plus two retry periods.",
    )
    renew_deadline_seconds: float = Field(
        10.0,
        gt=0,
        description="The leader stops its jobs when it could not renew the Lease for this long "
        "(shorter than the lease duration, so it stops before a successor starts).",
    )
    retry_period_seconds: float = Field(
        2.0, gt=0, description="How often the leader renews and the others try to take over."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.retry_period_seconds < self.renew_deadline_seconds:
            raise ValueError("retry_period_seconds must be shorter than renew_deadline_seconds")
        if not self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError("renew_deadline_seconds must be shorter than lease_duration_seconds")
        return self


class OnyxiaCompatSettings(Group):
    """Onyxia's REST API, for the stock Onyxia web (see docs/onyxia-web.md)."""

    enabled: bool = Field(True, description="Serve Onyxia's REST API under onyxia_compat.prefix.")
    prefix: str = Field(
        "/api",
        pattern=r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$",
        description="Path Onyxia's API is served under (the web's ONYXIA_API_URL ends with "
        "it); our own API keeps its paths, and none of them collides with Onyxia's under /api.",
    )
    web_client_id: str | None = Field(
        None,
        description="OIDC client the Onyxia web signs in with (a public client, PKCE), "
        "published in /public/configuration; unset: auth.client_id. Its access tokens must "
        "carry our audience (auth.audience, else auth.client_id).",
    )
    cors_allowed_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of an Onyxia web served from another "
        "origin, allowed to call Onyxia's API from the browser (CORS, bearer tokens only, never "
        "cookies); empty: no CORS. Our own API never answers cross-origin calls.",
    )

    @model_validator(mode="after")
    def _origins(self) -> Self:
        check_origins("onyxia_compat.cors_allowed_origins", self.cors_allowed_origins)
        return self


def check_origins(setting: str, origins: list[str]) -> None:
    """Refuse (ValueError) any entry that is not an origin, scheme://host[:port]."""
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ValueError(
                f"{setting}: {origin!r} is not an origin "
                "(scheme://host[:port], no path, no trailing slash)"
            )


class Settings(BaseSettings):
    """All settings of onyxia-py."""

    model_config = SettingsConfigDict(
        env_prefix="ONYXIA_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    dev_mode: bool = Field(
        False, description="Allow insecure defaults on any address (never in production)."
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    helm: HelmSettings = Field(default_factory=HelmSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    catalogs: CatalogSettings = Field(default_factory=CatalogSettings)
    region: RegionSettings = Field(default_factory=RegionSettings)
    services: ServiceSettings = Field(default_factory=ServiceSettings)
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    projects: ProjectSettings = Field(default_factory=ProjectSettings)
    onyxia_compat: OnyxiaCompatSettings = Field(default_factory=OnyxiaCompatSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment, then the YAML file named by ONYXIA_CONFIG."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("ONYXIA_CONFIG")
        if config_file:
            _check_yaml_file(Path(config_file))
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Self:
        if (
            self.auth.mode is AuthMode.OIDC
            and self.server.session_secret.get_secret_value() == DEFAULT_SESSION_SECRET
        ):
            raise ValueError(
                "auth mode oidc needs server.session_secret (ONYXIA_SERVER__SESSION_SECRET, "
                "at least 32 random characters): the default is published, and with it anyone "
                "could compute project passwords and unseal stored provider tokens"
            )
        if self.dev_mode or is_loopback(self.server.host):
            return self
        if self.auth.mode is AuthMode.NONE:
            raise ValueError(
                f"auth mode 'none' is refused on {self.server.host}: bind to 127.0.0.1, "
                "configure OIDC, or set ONYXIA_DEV_MODE=true"
            )
        if len(self.server.session_secret.get_secret_value()) < 32:
            raise ValueError("server.session_secret must have at least 32 characters")
        return self

    @model_validator(mode="after")
    def _settings_agree(self) -> Self:
        # Combinations that start but could never work, refused with what to change.
        if (
            self.auth.mode is AuthMode.NONE
            and self.s3.enabled
            and self.s3.credentials_mode is S3CredentialsMode.WEB_IDENTITY
        ):
            raise ValueError(
                "s3.credentials_mode web-identity needs users' OpenID Connect tokens, which auth "
                "mode none has not: use s3.credentials_mode assume-role (with the platform's S3 "
                "key) or configure OIDC (auth.mode oidc)"
            )
        return self


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_yaml_file(path: Path) -> None:
    """Fail early and clearly on a missing or malformed config file."""
    if not path.is_file():
        raise ValueError(f"ONYXIA_CONFIG names {path}, which is not a file")
    try:
        content: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"ONYXIA_CONFIG file {path} is not valid YAML: {exc}") from None
    if content is not None and not isinstance(content, dict):
        raise ValueError(f"ONYXIA_CONFIG file {path} must hold a mapping at the top level")
