"""The onyxia context: the values a chart's schema may ask for (`user.email`, `k8s.domain`, ...).

Onyxia builds it in the browser; we build it on the server so a client cannot forge it. A path
we cannot supply is left out rather than set to null, so a schema falls back to its default.
"""

from __future__ import annotations

import base64
import copy
import enum
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


class Missing(enum.Enum):
    """The type of `MISSING`."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = Missing.MISSING
"""What `lookup` returns for a path the context does not hold."""


@dataclass(frozen=True)
class ContextUser:
    """Who launches the service."""

    idep: str
    name: str
    email: str | None
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    lang: str
    ip: str | None
    decoded_id_token: dict[str, Any]
    profile: dict[str, Any]
    dark_mode: bool = False


@dataclass(frozen=True)
class ContextProject:
    """The project the service is launched into."""

    id: str
    namespace: str
    group: str | None
    password: str


@dataclass(frozen=True)
class ContextRegion:
    """Platform settings a chart may read (exposure, defaults, injections)."""

    domain: str
    ingress_class: str | None = None
    ingress: bool = True
    route: bool = False
    istio: dict[str, Any] = field(default_factory=lambda: {"enabled": False, "gateways": []})
    use_cert_manager: bool = False
    cert_manager_issuer: str | None = None
    init_script_url: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    tolerations: list[Any] = field(default_factory=list)
    node_selector: dict[str, Any] = field(default_factory=dict)
    default_network_policy: bool = True
    # `region.from`: the NetworkPolicy peers admitted besides the namespace's own pods.
    network_policy_from: list[Any] = field(default_factory=list)
    allowed_uri_pattern: str = "^https://"
    oauth2: dict[str, Any] = field(default_factory=dict)
    custom_values: dict[str, Any] = field(default_factory=dict)
    # `region.sliders.<name>`, in Onyxia's spelling (sliderMin, sliderMax, sliderStep, sliderUnit).
    sliders: dict[str, dict[str, Any]] = field(default_factory=dict)
    kubernetes_enabled: bool = True
    kubernetes_role: str = "view"
    proxy: dict[str, Any] | None = None
    package_repositories: dict[str, Any] | None = None
    certificate_authority: str | None = None
    certificate_authority_path: str | None = None
    # Legacy or site-specific `region.*` keys (`defaultIpProtection`, `startupProbe`...).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextS3:
    """The S3 profile handed to the service; no access key means anonymous access.

    `secret_name` names the Secret the platform created in the project with the same
    credentials and keeps fresh while the service runs; charts that know it (`s3.secretName`)
    read that Secret instead of baking the credentials into their own."""

    access_key_id: str | None
    secret_access_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    region: str
    endpoint_host: str
    port: int = 443
    path_style: bool = False
    bucket: str | None = None
    working_directory: str | None = None
    profile_name: str = "default"
    secret_name: str | None = None
    expiration: str | None = None


_PASSWORD_ALPHABET: Final = string.ascii_letters + string.digits


def _one_time_password() -> str:
    # Letters and digits only: it ends up in URLs, shell scripts and YAML unquoted.
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(24))


def _random_subdomain() -> str:
    # Six digits, as Onyxia does: short enough to keep hostnames within a 63-char label.
    return str(100_000 + secrets.randbelow(900_000))


def _present(**values: object) -> dict[str, Any]:
    """The keyword arguments that are not None."""
    return {key: value for key, value in values.items() if value is not None}


def _s3_entry(s3: ContextS3) -> dict[str, Any]:
    # Charts prefix the endpoint with https://, so it is a host, with the port only if unusual.
    endpoint = s3.endpoint_host if s3.port == 443 else f"{s3.endpoint_host}:{s3.port}"
    return _present(
        AWS_ACCESS_KEY_ID=s3.access_key_id,
        AWS_SECRET_ACCESS_KEY=s3.secret_access_key,
        AWS_SESSION_TOKEN=s3.session_token,
        AWS_DEFAULT_REGION=s3.region,
        AWS_S3_ENDPOINT=endpoint,
        AWS_BUCKET_NAME=s3.bucket,
        port=s3.port,
        pathStyleAccess=s3.path_style,
        isAnonymous=s3.access_key_id is None,
        profileName=s3.profile_name,
        workingDirectoryPath=s3.working_directory,
        secretName=s3.secret_name,
        AWS_EXPIRATION=s3.expiration,
    )


def _git(user: ContextUser) -> dict[str, Any]:
    git: dict[str, Any] = {"name": user.name, "credentials_cache_duration": 0}
    if user.email is not None:
        git["email"] = user.email
    saved = user.profile.get("git")
    if isinstance(saved, Mapping):
        for key in ("name", "email", "token", "credentials_cache_duration", "project"):
            if saved.get(key) not in (None, ""):
                git[key] = saved[key]
    return git


def build_context(
    user: ContextUser,
    project: ContextProject,
    region: ContextRegion,
    *,
    s3: ContextS3 | None,
    one_time_password: str | None = None,
    random_subdomain: str | None = None,
) -> dict[str, Any]:
    """The onyxia context for one launch, as the nested dict chart schemas address."""
    basic = base64.b64encode(f"{project.id}:{project.password}".encode()).decode("ascii")
    user_ctx = _present(
        idep=user.idep,
        name=user.name,
        email=user.email,
        password=project.password,
        ip=user.ip,
        lang=user.lang,
        darkMode=user.dark_mode,
        decodedIdToken=copy.deepcopy(user.decoded_id_token),
        profile=copy.deepcopy(user.profile),
        # Never the user's own token: anything in the pod could act as them, long after.
        accessToken=None,
    )
    region_ctx = copy.deepcopy(region.extra)
    region_ctx.update(
        resources=copy.deepcopy(region.resources),
        tolerations=copy.deepcopy(region.tolerations),
        nodeSelector=copy.deepcopy(region.node_selector),
        defaultNetworkPolicy=region.default_network_policy,
        allowedURIPattern=region.allowed_uri_pattern,
        oauth2=copy.deepcopy(region.oauth2),
        customValues=copy.deepcopy(region.custom_values),
        sliders=copy.deepcopy(region.sliders),
    )
    # `from` is a Python keyword, hence not a keyword argument above.
    region_ctx["from"] = copy.deepcopy(region.network_policy_from)
    context: dict[str, Any] = {
        "user": user_ctx,
        "service": {"oneTimePassword": one_time_password or _one_time_password()},
        "project": {"id": project.id, "password": project.password, "basic": basic},
        "git": _git(user),
        "vault": {},
        "s3_array": [_s3_entry(s3)] if s3 is not None else [],
        "k8s": _present(
            domain=region.domain,
            ingressClassName=region.ingress_class,
            ingress=region.ingress,
            route=region.route,
            istio=copy.deepcopy(region.istio),
            useCertManager=region.use_cert_manager,
            certManagerClusterIssuer=region.cert_manager_issuer,
            randomSubdomain=random_subdomain or _random_subdomain(),
            initScriptUrl=region.init_script_url or None,
        ),
        "region": region_ctx,
        "kubernetes": {"enabled": region.kubernetes_enabled, "role": region.kubernetes_role},
    }
    if s3 is not None:
        context["s3"] = _s3_entry(s3)
    if region.proxy is not None:
        context["proxyInjection"] = copy.deepcopy(region.proxy)
    if region.package_repositories is not None:
        context["packageRepositoryInjection"] = copy.deepcopy(region.package_repositories)
    authority = _present(
        cacerts=region.certificate_authority, pathToCaBundle=region.certificate_authority_path
    )
    if authority:
        context["certificateAuthorityInjection"] = authority
    return context


# One step of a path: `name`, `[0]`, `["a.b"]` or `['a.b']`.
_STEP: Final = re.compile(r"""\.?(?:([^.\[\]]+)|\[(\d+)\]|\["([^"]*)"\]|\['([^']*)'\])""")


def _steps(path: str) -> list[str | int] | None:
    """The keys and indices of a dotted path, or None if it is not one."""
    steps: list[str | int] = []
    pos = 0
    path = path.strip()
    while pos < len(path):
        match = _STEP.match(path, pos)
        if match is None or match.end() == pos or (pos == 0 and path.startswith(".")):
            return None
        name, index, dq, sq = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(part for part in (name, dq, sq) if part is not None))
        pos = match.end()
    return steps or None


def lookup(context: Mapping[str, Any], path: str) -> object | Missing:
    """The value at a dotted path (`user.email`, `s3_array.0`, `groups[0]`), or MISSING."""
    steps = _steps(path)
    if steps is None:
        return MISSING
    node: object = context
    for step in steps:
        if isinstance(node, Mapping) and str(step) in node:
            node = node[str(step)]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif isinstance(node, list) and isinstance(step, str) and step.isdigit():
            if int(step) >= len(node):
                return MISSING
            node = node[int(step)]
        else:
            return MISSING
    return MISSING if node is None else node
