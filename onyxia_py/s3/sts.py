"""`TokenService` over boto3: STS for credentials, IAM for per-user roles."""

from __future__ import annotations

from onyxia_py.errors import NotFound
from onyxia_py.s3.clients import Clients, call, compact, credentials_of
from onyxia_py.s3.ports import PolicyDocument, TemporaryCredentials
from onyxia_py.settings import S3Settings


class BotoTokenService:
    """`TokenService` over boto3 (STS and IAM)."""

    def __init__(self, settings: S3Settings) -> None:
        self._clients = Clients(settings)

    async def assume_role_with_web_identity(
        self,
        *,
        role_arn: str,
        session_name: str,
        token: str,
        duration_seconds: int,
        policy: PolicyDocument | None = None,
    ) -> TemporaryCredentials:
        """AssumeRoleWithWebIdentity, with a session policy when given; Forbidden when the
        server refuses the token or role."""
        sts = self._clients.anonymous_sts()
        extra = {"Policy": compact(policy)} if policy is not None else {}
        answer = await call(
            "getting S3 credentials",
            lambda: sts.assume_role_with_web_identity(
                RoleArn=role_arn,
                RoleSessionName=session_name,
                WebIdentityToken=token,
                DurationSeconds=duration_seconds,
                **extra,
            ),
        )
        return credentials_of(answer)

    async def assume_role(
        self, *, role_arn: str, session_name: str, policy: PolicyDocument, duration_seconds: int
    ) -> TemporaryCredentials:
        """AssumeRole with the platform key and a session policy."""
        sts = self._clients.platform("sts")
        answer = await call(
            "getting S3 credentials",
            lambda: sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName=session_name,
                Policy=compact(policy),
                DurationSeconds=duration_seconds,
            ),
        )
        return credentials_of(answer)

    async def ensure_role(
        self,
        *,
        name: str,
        trust: PolicyDocument,
        policy: PolicyDocument,
        max_session_seconds: int,
    ) -> None:
        """Create the role when missing, else update its trust; then put its inline policy."""
        iam = self._clients.platform("iam")
        try:
            await call("reading the S3 role", lambda: iam.get_role(RoleName=name))
        except NotFound:
            await call(
                "creating the S3 role",
                lambda: iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=compact(trust),
                    MaxSessionDuration=max(3600, max_session_seconds),
                ),
            )
        else:
            await call(
                "updating the S3 role",
                lambda: iam.update_assume_role_policy(RoleName=name, PolicyDocument=compact(trust)),
            )
        await call(
            "setting the S3 role's policy",
            lambda: iam.put_role_policy(
                RoleName=name, PolicyName="onyxia", PolicyDocument=compact(policy)
            ),
        )
