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
from typing import Any, Self

import yaml
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from onyxia_py.settings.base import Group, check_origins
from onyxia_py.settings.region import ProjectSettings, RegionSettings, SliderBounds
from onyxia_py.settings.s3 import S3CredentialsMode, S3Settings

__all__ = [
    "DEFAULT_SESSION_SECRET",
    "AuthMode",
    "AuthSettings",
    "CatalogSettings",
    "DatabaseSettings",
    "Group",
    "HelmSettings",
    "KubernetesSettings",
    "LeaderElectionSettings",
    "LogFormat",
    "OnyxiaCompatSettings",
    "ProjectSettings",
    "RegionSettings",
    "S3CredentialsMode",
    "S3Settings",
    "ServerSettings",
    "ServiceSettings",
    "Settings",
    "SliderBounds",
    "check_origins",
    "is_loopback",
]

# A placeholder that marks "nobody chose a secret": accepted only in dev mode or on localhost.
DEFAULT_SESSION_SECRET = "insecure-dev-session-secret-change-me"  # noqa: S105


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
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="HTTP worker processes on the one port (the kernel spreads connections). "
        "Each is a replica: its own listing cache fed by the cluster's watches, while sessions, "
        "records and the leader's Lease are shared through the database and the cluster. "
        "Migrations run once, before they start.",
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
    reconcile_sweep_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long one sweep of the reconciler over every project takes: each pass "
        "reads the projects the listing cache points at (a launch left installing, workloads "
        "without a record) and its share of the others, so a record edited behind the "
        "platform's back is mirrored again within this. At most every project each pass.",
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
