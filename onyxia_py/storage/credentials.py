"""Temporary S3 credentials for a user, minted by the S3 server's STS.

Two ways, chosen by `s3.credentials_mode`:
- web-identity (default): AssumeRoleWithWebIdentity with the user's own OIDC access token. The
  role is the user's (role_arn with `{username}`, optionally provisioned here: it trusts only
  their OIDC subject and allows only their buckets) or a shared role whose policy uses claims
  (MinIO, AWS). Either way the S3 server's policies confine the result, so a user calling STS
  directly with their own token gets nothing more than through us.
- assume-role: AssumeRole with the platform key and a session policy limited to the user's
  buckets, for servers without web identity. Users never see the platform key.

Credentials for a service in a group project are cut down further, in both modes, by a session
policy naming the project's bucket only (`scope`): the S3 server grants what both the role and
that policy allow, so a member who reads the service's Secret gets nothing of the launcher's
personal bucket or other groups' buckets.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Protocol

from onyxia_py.errors import Forbidden
from onyxia_py.keyed_locks import KeyedLocks
from onyxia_py.s3 import TemporaryCredentials, TokenService
from onyxia_py.settings import ProjectSettings, S3CredentialsMode, S3Settings
from onyxia_py.storage import core
from onyxia_py.storage.models import BucketScope, StorageUser, TokenHint

log = logging.getLogger(__name__)

# A provisioned role is written again at most this often (or when the user's groups change).
PROVISION_SECONDS = 300.0
# Users kept in the credential and provisioning caches before expired entries are dropped.
CACHE_MAX = 10_000
# Cached credentials, with the groups they were minted for.
_Cached = tuple[tuple[str, ...], TemporaryCredentials]


class UserTokens(Protocol):
    """Where a user's OIDC access token comes from when they are not calling (accounts)."""

    async def provider_access_token(
        self, user_id: int, session_id: int | None = None
    ) -> str | None: ...


class S3Credentials:
    """Mints credentials; keeps the last ones per user and scope for the bucket browser."""

    def __init__(
        self,
        settings: S3Settings,
        projects: ProjectSettings,
        sts: TokenService,
        tokens: UserTokens | None,
        issuer: str | None,
        audience: str | None = None,
    ) -> None:
        self.settings = settings
        self.projects = projects
        self.sts = sts
        self.tokens = tokens
        self.issuer = issuer
        self.audience = audience
        self._provisioned: dict[str, tuple[float, tuple[str, ...]]] = {}
        # Per user and scope: a service's cut-down credentials never serve the user's own calls.
        self._cache: dict[tuple[int, BucketScope], _Cached] = {}
        self._locks: KeyedLocks[tuple[int, BucketScope]] = KeyedLocks()

    async def issue(
        self, user: StorageUser, hint: TokenHint | None = None, scope: BucketScope = None
    ) -> TemporaryCredentials:
        """Fresh credentials for `user`, valid for `s3.duration_seconds`: for all their buckets,
        or only for those of `scope` (Forbidden when none of them is the user's)."""
        settings = self.settings
        assert settings.role_arn is not None  # checked by the settings
        buckets = core.user_buckets(user, self.projects, settings)
        reach = core.scoped(buckets, scope)
        if not reach:
            raise Forbidden(
                f"{user.username} is not a member of this project: no S3 credentials for its "
                "bucket",
                reason="not-a-member",
            )
        session_policy = core.buckets_policy(reach) if scope is not None else None
        role_arn = core.render(settings.role_arn, user)
        name = core.session_name(settings.role_session_name, user)
        if settings.credentials_mode is S3CredentialsMode.ASSUME_ROLE:
            creds = await self.sts.assume_role(
                role_arn=role_arn,
                session_name=name,
                policy=core.buckets_policy(reach),
                duration_seconds=settings.duration_seconds,
            )
        else:
            token = await self._web_token(user, hint or TokenHint())
            if settings.provision_roles:
                await self._provision(user, role_arn, buckets)
            creds = await self.sts.assume_role_with_web_identity(
                role_arn=role_arn,
                session_name=name,
                token=token,
                duration_seconds=settings.duration_seconds,
                policy=session_policy,
            )
        if len(self._cache) >= CACHE_MAX:  # bounded: drop what can no longer be reused
            self._cache = {k: c for k, c in self._cache.items() if self._reusable(c[1])}
        self._cache[(user.user_id, scope)] = (user.groups, creds)
        return creds

    def _reusable(self, creds: TemporaryCredentials) -> bool:
        return core.reusable(creds.expiration, datetime.now(UTC), self.settings.duration_seconds)

    async def current(
        self, user: StorageUser, hint: TokenHint | None = None, scope: BucketScope = None
    ) -> TemporaryCredentials:
        """The user's last credentials (for `scope`) while they have a good part of their life
        left, else new ones (the bucket browser makes many calls: one STS call per few minutes,
        not per call)."""
        key = (user.user_id, scope)
        async with self._locks.hold(key):
            cached = self._cache.get(key)
            if cached is not None:
                groups, creds = cached
                now = datetime.now(UTC)
                if groups == user.groups and core.reusable(
                    creds.expiration, now, self.settings.duration_seconds
                ):
                    return creds
            return await self.issue(user, hint, scope)

    async def _web_token(self, user: StorageUser, hint: TokenHint) -> str:
        if hint.web_token:
            return hint.web_token
        token = (
            await self.tokens.provider_access_token(user.user_id, hint.session_id)
            if self.tokens is not None
            else None
        )
        if not token:
            raise Forbidden(
                "S3 credentials are minted with your OpenID Connect login: log in to the "
                "platform (or call with your provider's access token)",
                reason="no-web-identity",
            )
        return token

    async def _provision(self, user: StorageUser, role_arn: str, buckets: list[str]) -> None:
        """Write the user's role: trusting only their subject, allowing only their buckets."""
        fingerprint = (user.subject, *buckets)
        done = self._provisioned.get(role_arn)
        if done and done[1] == fingerprint and time.monotonic() - done[0] < PROVISION_SECONDS:
            return
        if not self.issuer:
            raise Forbidden("role provisioning needs auth mode oidc (an issuer to trust)")
        await self.sts.ensure_role(
            name=core.role_name(role_arn),
            trust=core.web_identity_trust(
                core.provider_arn(self.settings, self.issuer),
                self.issuer,
                user.subject,
                self.audience,
            ),
            policy=core.buckets_policy(buckets),
            max_session_seconds=self.settings.duration_seconds,
        )
        now = time.monotonic()
        if len(self._provisioned) >= CACHE_MAX:  # bounded: forget what would be redone anyway
            self._provisioned = {
                arn: done
                for arn, done in self._provisioned.items()
                if now - done[0] < PROVISION_SECONDS
            }
        self._provisioned[role_arn] = (now, fingerprint)
        log.info("S3 role %s provisioned for %s", core.role_name(role_arn), user.username)
