"""Object storage rules, pure: bucket and role names, the policies that confine a user to their
buckets, object key checks, and the public-prefix statements the platform owns in bucket
policies (and nothing else)."""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from onyxia_py.errors import FieldError, Invalid
from onyxia_py.naming import prefixed_label, safe_label
from onyxia_py.projects.core import personal_project, projects_of
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings, S3Settings
from onyxia_py.storage.models import BucketScope, Endpoint, StorageUser

PolicyDocument = dict[str, Any]

MAX_KEY_BYTES: Final = 1024
PUBLIC_SID_PREFIX: Final = "onyxia-public-"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_SESSION_NAME: Final = re.compile(r"[^\w+=,.@-]")
# A name part inside role names and session names: role names stop at 64 characters.
_NAME_PART: Final = 40


# -- names -------------------------------------------------------------------------------


def name_part(username: str) -> str:
    """The username as it appears in role and session names: a safe label of <= 40 chars."""
    return safe_label(username, _NAME_PART)


def personal_bucket(username: str, settings: S3Settings) -> str:
    """The personal bucket of `username` (`user-<name>`, made a valid bucket name)."""
    return prefixed_label(settings.user_bucket_prefix, username)


def group_bucket(project: Project, projects: ProjectSettings, settings: S3Settings) -> str:
    """The bucket of a group project (`projet-<group>`, from the project's rewritten name)."""
    return namespace_bucket(project.namespace, projects, settings)


def namespace_bucket(namespace: str, projects: ProjectSettings, settings: S3Settings) -> str:
    """The bucket of the group project whose namespace is `namespace`."""
    name = namespace.removeprefix(projects.group_namespace_prefix)
    return prefixed_label(settings.group_bucket_prefix, name)


def project_bucket(
    project: Project, username: str, projects: ProjectSettings, settings: S3Settings
) -> str:
    """The bucket of a project: the user's own for a personal project, else the group's."""
    if project.group is None:
        return personal_bucket(username, settings)
    return group_bucket(project, projects, settings)


def user_buckets(user: StorageUser, projects: ProjectSettings, settings: S3Settings) -> list[str]:
    """Every bucket a user may use: their own, then one per group project."""
    return [
        project_bucket(p, user.username, projects, settings)
        for p in projects_of(user.username, user.groups, projects)
    ]


def render(template: str, user: StorageUser) -> str:
    """A role ARN or session name template with `{username}` filled in."""
    return template.replace("{username}", name_part(user.username))


def session_name(template: str, user: StorageUser) -> str:
    """An STS RoleSessionName: the template filled, only allowed characters, 2 to 64 long."""
    name = _SESSION_NAME.sub("-", render(template, user))[:64]
    return name if len(name) >= 2 else f"onyxia-{name}"


def role_name(role_arn: str) -> str:
    """The role name at the end of a role ARN (`arn:aws:iam::acct:role/path/name`)."""
    return role_arn.rsplit("/", 1)[-1]


def issuer_host_path(issuer: str) -> str:
    """The issuer as IAM names it in ARNs and condition keys: host[:port][/path]."""
    parts = urlsplit(issuer)
    return (parts.netloc + parts.path).rstrip("/")


def provider_arn(settings: S3Settings, issuer: str) -> str:
    """The OIDC provider ARN provisioned trust policies name."""
    return settings.oidc_provider_arn or f"arn:aws:iam:::oidc-provider/{issuer_host_path(issuer)}"


def endpoint(settings: S3Settings) -> Endpoint:
    """The configured endpoint, split the way clients and charts want it."""
    url = (settings.endpoint_url or "").rstrip("/")
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    return Endpoint(
        url=url,
        host=parts.hostname or "",
        port=parts.port or (443 if secure else 80),
        secure=secure,
        region=settings.region,
        path_style=settings.path_style,
    )


# -- what a service's credentials reach ---------------------------------------------------


def service_scope(
    namespace: str, user: StorageUser, projects: ProjectSettings, settings: S3Settings
) -> BucketScope:
    """The buckets credentials for `user`'s service in `namespace` may reach, from where the
    service runs, never from what its Secret says: all of the user's (None) in their personal
    project, which only they can read; only the project's bucket in a group project, whose
    members can read each other's Secrets; none anywhere else."""
    if namespace == personal_project(user.username, projects).namespace:
        return None
    if not namespace.startswith(projects.group_namespace_prefix):
        return ()
    return (namespace_bucket(namespace, projects, settings),)


def scoped(buckets: list[str], scope: BucketScope) -> list[str]:
    """The user's `buckets` cut down to `scope` (all of them without one)."""
    return list(buckets) if scope is None else [b for b in buckets if b in scope]


# -- policies ----------------------------------------------------------------------------


def bucket_arns(buckets: list[str]) -> list[str]:
    """Each bucket and everything in it, as policy resources."""
    return [arn for b in buckets for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]


def buckets_policy(buckets: list[str]) -> PolicyDocument:
    """Everything on these buckets, nothing else: a role's permission policy or, in assume-role
    mode, the session policy that cuts the platform role down to one user."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OnyxiaUserBuckets",
                "Effect": "Allow",
                "Action": ["s3:*"],
                "Resource": bucket_arns(buckets),
            }
        ],
    }


def web_identity_trust(
    provider: str, issuer: str, subject: str, audience: str | None
) -> PolicyDocument:
    """A trust policy letting only the OIDC subject `subject` of `issuer` assume the role, with
    tokens issued for the platform (`audience`), not for another client of the provider."""
    conditions = {f"{issuer_host_path(issuer)}:sub": subject}
    if audience:
        conditions[f"{issuer_host_path(issuer)}:aud"] = audience
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": [provider]},
                "Action": ["sts:AssumeRoleWithWebIdentity"],
                "Condition": {"StringEquals": conditions},
            }
        ],
    }


def public_sid(prefix: str) -> str:
    """The Sid of the statement that makes `prefix` public (stable, one per prefix)."""
    return PUBLIC_SID_PREFIX + hashlib.sha256(prefix.encode("utf-8")).hexdigest()[:16]


def public_statement(bucket: str, prefix: str) -> dict[str, Any]:
    """Anyone may read objects under `prefix` (not list them, not write)."""
    return {
        "Sid": public_sid(prefix),
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
    }


def _statements(policy: PolicyDocument | None) -> list[dict[str, Any]]:
    statements = (policy or {}).get("Statement") or []
    return [s for s in (statements if isinstance(statements, list) else [statements]) if s]


def _ours(statement: dict[str, Any]) -> bool:
    return str(statement.get("Sid", "")).startswith(PUBLIC_SID_PREFIX)


def with_public(policy: PolicyDocument | None, bucket: str, prefix: str) -> PolicyDocument:
    """`policy` plus the statement making `prefix` public; every other statement kept as is."""
    document: PolicyDocument = copy.deepcopy(policy) if policy else {"Version": "2012-10-17"}
    sid = public_sid(prefix)
    kept = [s for s in _statements(document) if s.get("Sid") != sid]
    document["Statement"] = [*kept, public_statement(bucket, prefix)]
    return document


def without_public(policy: PolicyDocument | None, prefix: str) -> PolicyDocument | None:
    """`policy` without our statement for `prefix`; None when nothing is left."""
    if not policy:
        return None
    sid = public_sid(prefix)
    kept = [s for s in _statements(policy) if s.get("Sid") != sid]
    if not kept:
        return None
    document = copy.deepcopy(policy)
    document["Statement"] = kept
    return document


def public_prefixes(policy: PolicyDocument | None, bucket: str) -> list[str]:
    """The prefixes our statements make public, sorted."""
    found = set()
    start = f"arn:aws:s3:::{bucket}/"
    for statement in _statements(policy):
        if not _ours(statement):
            continue
        resources = statement.get("Resource") or []
        for resource in resources if isinstance(resources, list) else [resources]:
            text = str(resource)
            if text.startswith(start) and text.endswith("*"):
                found.add(text[len(start) : -1])
    return sorted(found)


# -- object keys -------------------------------------------------------------------------


def _path_errors(value: str, field: str, *, folder: bool) -> list[FieldError]:
    if not value:
        return [FieldError(field, "must not be empty")]
    if len(value.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return [FieldError(field, f"must be at most {MAX_KEY_BYTES} bytes")]
    if _CONTROL.search(value):
        return [FieldError(field, "must not contain control characters")]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return [FieldError(field, "must be valid UTF-8")]
    if value.startswith("/"):
        return [FieldError(field, "must not start with '/'")]
    body = value[:-1] if folder and value.endswith("/") else value
    if not folder and value.endswith("/"):
        return [FieldError(field, "must not end with '/' (that names a folder)")]
    for segment in body.split("/"):
        if segment in (".", ".."):
            return [FieldError(field, "must not contain '.' or '..' segments")]
        if segment == "":
            return [FieldError(field, "must not contain empty segments ('//')")]
    return []


def check_key(key: str, field: str = "key") -> str:
    """`key` if it is a safe object key, else Invalid naming the field and the reason."""
    errors = _path_errors(key, field, folder=False)
    if errors:
        raise Invalid(f"{field} is not a valid object key", errors)
    return key


def check_prefix(prefix: str, field: str = "prefix", *, allow_root: bool = True) -> str:
    """A folder prefix ending in '/' ('' for the root when allowed), or Invalid."""
    if prefix == "" and allow_root:
        return ""
    errors = _path_errors(prefix, field, folder=True)
    if errors:
        raise Invalid(f"{field} is not a valid folder", errors)
    return prefix if prefix.endswith("/") else prefix + "/"


def check_page_token(token: str, field: str = "token") -> str:
    """A listing's continuation token as S3 gave it (printable), or Invalid: a control character
    cannot travel in the S3 request, so it is the caller's mistake, not the server's."""
    if _CONTROL.search(token):
        raise Invalid(
            f"{field} is not a listing token",
            [FieldError(field, "must not contain control characters")],
        )
    return token


# -- refresh -----------------------------------------------------------------------------


def needs_refresh(expires_at: datetime | None, now: datetime, before_seconds: int) -> bool:
    """True when credentials expire within `before_seconds` (or their expiry is unknown)."""
    return expires_at is None or expires_at - now <= timedelta(seconds=before_seconds)


def reusable(expires_at: datetime, now: datetime, duration_seconds: int) -> bool:
    """Cached credentials are reused while they have a quarter of their life (<= 5 min) left."""
    return expires_at - now > timedelta(seconds=min(300, duration_seconds // 4))
