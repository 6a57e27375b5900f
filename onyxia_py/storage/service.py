"""Object storage as one service for the edges: credentials with snippets, the bucket browser
for a project's bucket, and the state of credentials injected into services. Without S3
settings it still exists and says, on every call, that S3 is not configured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from onyxia_py.errors import Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.projects.models import Project
from onyxia_py.s3 import ObjectStore, ObjectStream, TemporaryCredentials
from onyxia_py.settings import ProjectSettings, S3Settings
from onyxia_py.storage import core, objects
from onyxia_py.storage.browser import BucketBrowser
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.injection import S3Injector
from onyxia_py.storage.models import (
    Endpoint,
    InjectedStatus,
    IssuedCredentials,
    Listing,
    Preview,
    Snippet,
    StorageUser,
    TokenHint,
    Usage,
)
from onyxia_py.storage.preview import preview
from onyxia_py.storage.refresh import CredentialRefresher
from onyxia_py.storage.snippets import snippets

NOT_CONFIGURED = "S3 storage is not configured on this platform (s3.enabled is false)"


class Storage:
    """What the API offers about S3, for one caller and one project at a time."""

    def __init__(
        self,
        settings: S3Settings,
        projects: ProjectSettings,
        credentials: S3Credentials | None,
        store: ObjectStore | None,
        kube: KubeClient,
        injector: S3Injector,
        refresher: CredentialRefresher | None,
    ) -> None:
        self.settings = settings
        self.projects = projects
        self.credentials = credentials
        self.store = store
        self.browser = BucketBrowser(settings, store) if store is not None else None
        self.kube = kube
        self.injector = injector
        self.refresher = refresher

    async def start(self) -> None:
        """Start renewing services' credentials in the background (when S3 is configured)."""
        if self.refresher is not None:
            await self.refresher.start()

    async def stop(self) -> None:
        """Stop the background renewal."""
        if self.refresher is not None:
            await self.refresher.stop()

    @property
    def configured(self) -> bool:
        """True when S3 settings are given."""
        return self.credentials is not None and self.browser is not None

    def endpoint(self) -> Endpoint:
        """The S3 endpoint (Unavailable when S3 is not configured)."""
        self._check()
        return core.endpoint(self.settings)

    def bucket(self, user: StorageUser, project: Project) -> str:
        """The bucket of `project` for `user`."""
        return core.project_bucket(project, user.username, self.projects, self.settings)

    def _check(self) -> tuple[S3Credentials, BucketBrowser]:
        if self.credentials is None or self.browser is None:
            raise Unavailable(NOT_CONFIGURED, reason="s3-not-configured")
        return self.credentials, self.browser

    def _browser(self) -> BucketBrowser:
        return self._check()[1]

    async def issue(
        self, user: StorageUser, project: Project, hint: TokenHint
    ) -> tuple[IssuedCredentials, list[Snippet]]:
        """Fresh credentials for the caller, and snippets that use them."""
        credentials, _ = self._check()
        issued = IssuedCredentials(
            await credentials.issue(user, hint), self.endpoint(), self.bucket(user, project)
        )
        return issued, snippets(issued)

    async def ready(self, user: StorageUser, project: Project, hint: TokenHint) -> str:
        """The project's bucket, created if missing (with its CORS rules) with the caller's
        credentials, minted if needed (which writes a provisioned role): what a client calling
        S3 itself, such as the Onyxia web, expects to find. Returns the bucket's name."""
        creds = await self._session(user, hint)
        bucket = self.bucket(user, project)
        await self._browser().ensure_bucket(creds, bucket)
        return bucket

    async def _session(self, user: StorageUser, hint: TokenHint) -> TemporaryCredentials:
        credentials, _ = self._check()
        return await credentials.current(user, hint)

    async def list_folder(
        self,
        user: StorageUser,
        project: Project,
        hint: TokenHint,
        prefix: str,
        token: str | None,
        limit: int,
    ) -> Listing:
        """One page of the project's bucket (created on first use)."""
        creds = await self._session(user, hint)
        return await self._browser().list_folder(
            creds, self.bucket(user, project), prefix, token=token, limit=limit
        )

    async def upload(
        self,
        user: StorageUser,
        project: Project,
        hint: TokenHint,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
    ) -> int:
        """Store a streamed body."""
        creds = await self._session(user, hint)
        return await self._browser().upload(
            creds, self.bucket(user, project), key, chunks, content_type
        )

    async def download(
        self, user: StorageUser, project: Project, hint: TokenHint, key: str
    ) -> ObjectStream:
        """Open an object for streaming."""
        creds = await self._session(user, hint)
        return await self._browser().download(creds, self.bucket(user, project), key)

    async def delete_object(
        self, user: StorageUser, project: Project, hint: TokenHint, key: str
    ) -> None:
        """Delete one object."""
        creds = await self._session(user, hint)
        await self._browser().delete_object(creds, self.bucket(user, project), key)

    async def delete_prefix(
        self, user: StorageUser, project: Project, hint: TokenHint, prefix: str, confirm: str
    ) -> int:
        """Delete a folder recursively (confirmed)."""
        creds = await self._session(user, hint)
        return await self._browser().delete_prefix(
            creds, self.bucket(user, project), prefix, confirm
        )

    async def create_folder(
        self, user: StorageUser, project: Project, hint: TokenHint, path: str
    ) -> str:
        """Create an empty folder."""
        creds = await self._session(user, hint)
        return await self._browser().create_folder(creds, self.bucket(user, project), path)

    async def move(
        self, user: StorageUser, project: Project, hint: TokenHint, source: str, destination: str
    ) -> int:
        """Move or rename an object or a folder."""
        creds = await self._session(user, hint)
        return await self._browser().move(creds, self.bucket(user, project), source, destination)

    async def presign(
        self, user: StorageUser, project: Project, hint: TokenHint, key: str, seconds: int
    ) -> tuple[str, datetime]:
        """A download link and when it stops working."""
        creds = await self._session(user, hint)
        return await self._browser().presign(creds, self.bucket(user, project), key, seconds)

    async def public_prefixes(
        self, user: StorageUser, project: Project, hint: TokenHint
    ) -> list[str]:
        """The prefixes made public in the project's bucket."""
        creds = await self._session(user, hint)
        return await self._browser().public_prefixes(creds, self.bucket(user, project))

    async def set_public(
        self, user: StorageUser, project: Project, hint: TokenHint, prefix: str, public: bool
    ) -> list[str]:
        """Make a prefix public or private; the public prefixes after the change."""
        creds = await self._session(user, hint)
        return await self._browser().set_public(creds, self.bucket(user, project), prefix, public)

    async def usage(
        self, user: StorageUser, project: Project, hint: TokenHint, prefix: str = ""
    ) -> Usage:
        """Objects and bytes in the project's bucket (or under one folder of it)."""
        creds = await self._session(user, hint)
        return await self._browser().usage(creds, self.bucket(user, project), prefix)

    async def preview(
        self, user: StorageUser, project: Project, hint: TokenHint, key: str, lines: int
    ) -> Preview:
        """The head of an object."""
        creds = await self._session(user, hint)
        self._check()
        assert self.store is not None
        return await preview(self.store, creds, self.bucket(user, project), key, lines)

    async def injected(self, project: Project, as_user: Impersonation) -> list[InjectedStatus]:
        """The credentials Secrets of the project's services (annotations only, no secrets)."""
        secrets = await self.kube.list(
            "Secret",
            project.namespace,
            label_selector=objects.S3_LABEL,
            metadata_only=True,
            as_=as_user,
        )
        return sorted((objects.read_status(s) for s in secrets), key=lambda s: s.release)
