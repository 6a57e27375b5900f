"""Renewing the S3 credentials of running services before they expire.

Runs in the background as the platform: it reads each managed project's RoleBinding to learn
whom to act as (as the lifetime policy does), lists the project's S3 Secrets, and renews those
close to expiry with credentials minted for the service's owner, whose OIDC token comes from
their stored session (refreshed with its refresh token when needed). The Secret is patched in
place, so the credentials file mounted in the pods changes under running processes.

What the renewed credentials reach follows from the namespace the Secret is in, as at launch
(`core.service_scope`), never from its annotations, which anyone who can write Secrets there
can change: the project's bucket only in a group project, nothing where the owner is not a
member.

Suspended services are skipped (renewed when resumed). A failure is recorded on the Secret
(annotation, shown by the API) and posted as a Warning Event on the service, once per error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from onyxia_py.db import Users
from onyxia_py.errors import NotFound, OnyxiaError
from onyxia_py.identity import ActingIdentity, Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.projects import objects as project_objects
from onyxia_py.services import objects as service_objects
from onyxia_py.settings import S3Settings
from onyxia_py.storage import core, objects
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.models import StorageUser

log = logging.getLogger(__name__)

REFRESH_USER = "onyxia-py:s3-refresh"
# A Secret whose service never got its metadata (a launch that died half-way) is removed after
# this long; younger ones may belong to a launch in progress.
ORPHAN_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Outcome:
    """What one pass did to one Secret."""

    action: str  # "renewed", "failed", "skipped-suspended", "removed-orphan"
    target: str
    detail: str = ""


def failure_event(namespace: str, release: str, message: str, now: datetime) -> dict[str, Any]:
    """A Warning Event on the service saying its credentials could not be renewed."""
    stamp = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{release}.s3-refresh.{int(now.timestamp())}",
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": service_objects.meta_name(release),
            "namespace": namespace,
        },
        "reason": "S3CredentialsRefreshFailed",
        "message": f"S3 credentials could not be renewed: {message}"[:1000],
        "type": "Warning",
        "source": {"component": "onyxia-py"},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class CredentialRefresher:
    """The background job; `run_once` is one pass over every managed project."""

    def __init__(
        self,
        *,
        settings: S3Settings,
        kube: KubeClient,
        projects: ActingIdentity,
        users: Users,
        credentials: S3Credentials,
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.projects = projects
        self.users = users
        self.credentials = credentials
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> list[Outcome]:
        """Renew what is due in every managed project."""
        now = now or datetime.now(UTC)
        outcomes: list[Outcome] = []
        namespaces = await self.kube.list(
            "Namespace", label_selector=f"{project_objects.MANAGED_LABEL}=onyxia-py"
        )
        for namespace in namespaces:
            name = namespace["metadata"]["name"]
            try:
                as_owner = await self.projects.acting_identity(name, REFRESH_USER)
                if as_owner is None:
                    continue
                # Annotations say all the job needs: the credentials never travel here.
                secrets = await self.kube.list(
                    "Secret",
                    name,
                    label_selector=objects.S3_LABEL,
                    metadata_only=True,
                    as_=as_owner,
                )
            except OnyxiaError as exc:
                log.warning("S3 refresh: reading %s: %s", name, exc.detail)
                continue
            for secret in secrets:
                outcome = await self._one(secret, as_owner, now)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    async def _one(
        self, secret: dict[str, Any], as_owner: Impersonation, now: datetime
    ) -> Outcome | None:
        status = objects.read_status(secret)
        target = f"{status.namespace}/{status.release}"
        if not core.needs_refresh(status.expires_at, now, self.settings.refresh_before_seconds):
            return None
        try:
            meta_secret = await self.kube.get(
                "Secret", service_objects.meta_name(status.release), status.namespace, as_=as_owner
            )
        except NotFound:
            if status.created_at is not None and now - status.created_at > ORPHAN_AFTER:
                await self.kube.delete(
                    "Secret",
                    objects.secret_name(status.release),
                    status.namespace,
                    as_=as_owner,
                    missing_ok=True,
                )
                return Outcome("removed-orphan", target)
            return None
        except OnyxiaError as exc:
            log.warning("S3 refresh of %s: %s", target, exc.detail)
            return None
        if not service_objects.read_meta(meta_secret).running_since:
            return Outcome("skipped-suspended", target)
        try:
            record = await self.users.get(status.user_id)
            if record is None:
                raise NotFound(f"the owner of {target} is not a known user any more")
            user = StorageUser(record.id, record.username, record.subject, record.groups)
            scope = core.service_scope(
                status.namespace, user, self.credentials.projects, self.settings
            )
            creds = await self.credentials.issue(user, scope=scope)
            patch = objects.refreshed_patch(creds, core.endpoint(self.settings), status.bucket, now)
            await self.kube.patch(
                "Secret",
                objects.secret_name(status.release),
                patch,
                status.namespace,
                as_=as_owner,
            )
        except OnyxiaError as exc:
            await self._record_failure(
                status.namespace, status.release, status.error, exc, now, as_owner
            )
            return Outcome("failed", target, exc.detail)
        log.info("S3 credentials of %s renewed until %s", target, creds.expiration.isoformat())
        return Outcome("renewed", target)

    async def _record_failure(
        self,
        namespace: str,
        release: str,
        previous: str | None,
        exc: OnyxiaError,
        now: datetime,
        as_owner: Impersonation,
    ) -> None:
        log.warning("S3 credentials of %s/%s not renewed: %s", namespace, release, exc.detail)
        try:
            await self.kube.patch(
                "Secret",
                objects.secret_name(release),
                objects.error_patch(exc.detail, now),
                namespace,
                as_=as_owner,
            )
            # One Event per distinct error, not one per pass.
            if previous is None or not previous.endswith(exc.detail[:900]):
                await self.kube.create(failure_event(namespace, release, exc.detail, now))
        except OnyxiaError as again:
            log.warning("recording the S3 refresh failure of %s: %s", release, again.detail)

    async def start(self) -> None:
        """Renew on the interval, in the background."""
        self._task = asyncio.create_task(self._loop(), name="s3-credential-refresh")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_interval_seconds)
            try:
                await self.run_once()
            except OnyxiaError as exc:
                log.warning("S3 refresh pass failed: %s", exc.detail)

    async def stop(self) -> None:
        """Stop the background job."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
