"""Start-time checks of the S3 settings against the S3 server, so that a default that cannot work
with another is named at start rather than at the first launch.

The check reads the role with the platform's key; when the server cannot be reached or read, it
logs why and lets the platform start (S3 may come up later).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from onyxia_py.errors import OnyxiaError
from onyxia_py.settings import S3Settings

log = logging.getLogger(__name__)


class RoleReader(Protocol):
    """Reads an IAM role's limits from the S3 server."""

    async def max_session_seconds(self, role_name: str) -> int:
        """The role's maximum session duration (IAM GetRole MaxSessionDuration)."""
        ...


class S3SettingsConflict(ValueError):
    """The S3 settings cannot work with the S3 server's configuration."""


def role_name(role_arn: str) -> str | None:
    """The role's name from its ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`); None if not a role."""
    _, _, resource = role_arn.rpartition(":")
    if not resource.startswith("role/"):
        return None
    return resource.rsplit("/", 1)[1] or None


def lifetime_conflict(settings: S3Settings, role: str, max_seconds: int) -> str | None:
    """The message when s3.duration_seconds exceeds the role's maximum; None when it fits."""
    if settings.duration_seconds <= max_seconds:
        return None
    return (
        f"s3.duration_seconds is {settings.duration_seconds} s but the role {role!r} allows at "
        f"most {max_seconds} s (its MaxSessionDuration): the S3 server would refuse every "
        f"credential. Set s3.duration_seconds (ONYXIA_S3__DURATION_SECONDS) to {max_seconds} "
        f"or less, or raise the role's MaxSessionDuration."
    )


def checkable_role(settings: S3Settings) -> str | None:
    """The one role whose limit can be read at start; None (and why, in the log) otherwise."""
    if not settings.enabled or not settings.role_arn:
        return None
    if settings.access_key_id is None or settings.secret_access_key is None:
        log.info("S3 check skipped: without s3.access_key_id the role cannot be read")
        return None
    if settings.provision_roles or "{username}" in settings.role_arn:
        log.info("S3 check: per-user roles are provisioned to fit s3.duration_seconds")
        return None
    name = role_name(settings.role_arn)
    if name is None:
        log.warning("S3 check skipped: s3.role_arn %r does not name a role", settings.role_arn)
    return name


async def check_credential_lifetime(
    settings: S3Settings, roles: RoleReader, wait_seconds: float = 10.0
) -> None:
    """Raise S3SettingsConflict when s3.duration_seconds exceeds the role's maximum; log (and go
    on) when the role cannot be read."""
    name = checkable_role(settings)
    if name is None:
        return
    try:
        max_seconds = await asyncio.wait_for(roles.max_session_seconds(name), wait_seconds)
    except TimeoutError:
        log.warning(
            "S3 check skipped: the S3 server at %s did not answer within %.0f s; "
            "s3.duration_seconds (%d s) is not checked against the role %r",
            settings.endpoint_url,
            wait_seconds,
            settings.duration_seconds,
            name,
        )
        return
    except OnyxiaError as exc:
        log.warning(
            "S3 check skipped: cannot read the role %r at %s (%s); s3.duration_seconds (%d s) "
            "is not checked against its maximum",
            name,
            settings.endpoint_url,
            exc,
            settings.duration_seconds,
        )
        return
    problem = lifetime_conflict(settings, name, max_seconds)
    if problem is not None:
        raise S3SettingsConflict(problem)
    log.info(
        "S3 check: credentials of %d s fit the role %r (at most %d s)",
        settings.duration_seconds,
        name,
        max_seconds,
    )
