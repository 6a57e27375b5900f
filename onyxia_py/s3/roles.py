"""`RoleReader` over boto3: reads a role's limits with IAM GetRole, signed with the platform key."""

from __future__ import annotations

from onyxia_py.s3.clients import Clients, call
from onyxia_py.settings import S3Settings

# What IAM (AWS and RGW) answers for a role created without MaxSessionDuration.
DEFAULT_MAX_SESSION_SECONDS = 3600


class BotoRoleReader:
    """Reads IAM roles with the platform's key (s3.access_key_id)."""

    def __init__(self, settings: S3Settings) -> None:
        self._clients = Clients(settings)

    async def max_session_seconds(self, role_name: str) -> int:
        """The role's MaxSessionDuration; NotFound, Forbidden or Unavailable as translated."""
        iam = self._clients.platform("iam")
        answer = await call("reading the S3 role", lambda: iam.get_role(RoleName=role_name))
        role = answer.get("Role") or {}
        return int(role.get("MaxSessionDuration") or DEFAULT_MAX_SESSION_SECONDS)
