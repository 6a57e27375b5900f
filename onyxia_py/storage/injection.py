"""S3 credentials for services: minted at launch into the `s3.*` context and a Secret in the
project namespace, deleted with the service. In a group project they reach the project's bucket
only (`core.service_scope`): the other members can read the Secret.

A failing S3 server never stops a launch: the service starts without credentials and the launch
carries a warning the user sees. An unavailable database does (the launch's audit row needs it
next): it is refused at once rather than after a second wait for the database.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from onyxia_py.accounts.models import Principal
from onyxia_py.catalog.context import ContextS3
from onyxia_py.errors import OnyxiaError
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings, S3Settings
from onyxia_py.storage import core, objects
from onyxia_py.storage.browser import BucketBrowser
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.models import PreparedS3, StorageUser, TokenHint

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "database-unavailable"  # the reason of the database's Unavailable


class LaunchStorage(Protocol):
    """What the launcher asks of object storage, around an install."""

    async def prepare(self, principal: Principal, project: Project, release: str) -> PreparedS3:
        """Credentials for a service about to launch; a failure is a warning, except the
        database's being unavailable (Unavailable): the launch could not be recorded either."""
        ...

    async def store(self, prepared: PreparedS3, as_user: Impersonation) -> None:
        """Create the credentials Secret in the project (before the install)."""
        ...

    async def discard(self, namespace: str, release: str, as_user: Impersonation) -> None:
        """Delete a service's credentials Secret (rollback, uninstall); tolerant."""
        ...


def storage_user(principal: Principal) -> StorageUser:
    """The storage view of a caller."""
    identity = principal.identity
    return StorageUser(principal.user_id, identity.username, identity.subject, identity.groups)


class S3Injector:
    """`LaunchStorage` over the S3 server's STS and the project's Secrets."""

    def __init__(
        self,
        settings: S3Settings,
        projects: ProjectSettings,
        credentials: S3Credentials | None,
        kube: KubeClient,
        buckets: BucketBrowser | None = None,
    ) -> None:
        self.settings = settings
        self.projects = projects
        self.credentials = credentials
        self.kube = kube
        self.buckets = buckets

    async def prepare(self, principal: Principal, project: Project, release: str) -> PreparedS3:
        """Mint credentials and build the context and Secret; a warning instead on failure."""
        if self.credentials is None:
            return PreparedS3(None)  # S3 not configured: nothing to inject, nothing to warn about
        user = storage_user(principal)
        scope = core.service_scope(project.namespace, user, self.projects, self.settings)
        try:
            creds = await self.credentials.issue(
                user, TokenHint(session_id=principal.session_id), scope
            )
        except OnyxiaError as exc:
            if exc.extensions.get("reason") == DATABASE_UNAVAILABLE:
                # The launch's audit row needs the database next: refused now, not after a
                # second wait for it (two waits would pass the database's operation bound).
                raise
            log.warning("S3 credentials for %s/%s: %s", project.namespace, release, exc.detail)
            return PreparedS3(
                None,
                warning=f"S3 credentials could not be issued ({exc.detail}): the service "
                "starts without them",
            )
        endpoint = core.endpoint(self.settings)
        bucket = core.project_bucket(project, user.username, self.projects, self.settings)
        warning = None
        if self.buckets is not None:
            # The service's code expects its bucket to be there, as the Files page does.
            try:
                await self.buckets.ensure_bucket(creds, bucket)
            except OnyxiaError as exc:
                log.warning("bucket %s for %s: %s", bucket, release, exc.detail)
                warning = f"the bucket {bucket} could not be created ({exc.detail})"
        name = objects.secret_name(release)
        context = ContextS3(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            session_token=creds.session_token,
            region=endpoint.region,
            endpoint_host=endpoint.host,
            port=endpoint.port,
            path_style=endpoint.path_style,
            bucket=bucket,
            working_directory=f"{bucket}/",
            secret_name=name,
            expiration=objects.stamp(creds.expiration),
        )
        secret = objects.credentials_secret(
            namespace=project.namespace,
            release=release,
            owner=user.username,
            user_id=user.user_id,
            creds=creds,
            endpoint=endpoint,
            bucket=bucket,
            now=datetime.now(UTC),
        )
        return PreparedS3(context, secret, warning=warning)

    async def store(self, prepared: PreparedS3, as_user: Impersonation) -> None:
        """Create the Secret, as the user."""
        if prepared.secret is not None:
            await self.kube.create(prepared.secret, as_=as_user)

    async def discard(self, namespace: str, release: str, as_user: Impersonation) -> None:
        """Delete the Secret, as the user; a failure is logged."""
        try:
            await self.kube.delete(
                "Secret", objects.secret_name(release), namespace, as_=as_user, missing_ok=True
            )
        except OnyxiaError as exc:
            log.warning("deleting the S3 Secret of %s/%s: %s", namespace, release, exc.detail)
