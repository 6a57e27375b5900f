"""Object storage of a project: temporary credentials with snippets, the bucket browser, and
the credentials injected into services. Every bucket call uses the caller's own temporary
credentials; reads need the `read` scope, minting credentials and changes the `launch` scope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from onyxia_py.accounts.core import API_TOKEN_PREFIX
from onyxia_py.accounts.models import AuthMethod, Principal
from onyxia_py.api.catalogs import caller_project
from onyxia_py.api.deps import BootstrapDep, Launcher, Reader, SettingsDep, StorageDep
from onyxia_py.api.problems import problems
from onyxia_py.projects.models import Project
from onyxia_py.s3 import ObjectEntry
from onyxia_py.storage.injection import storage_user
from onyxia_py.storage.models import InjectedStatus, Preview, StorageUser, TokenHint

router = APIRouter(
    prefix="/api/projects/{project}/s3", tags=["storage"], responses=problems(404, 409, 502)
)

ProjectId = Annotated[str, Path(max_length=63)]
# Lengths are checked again, with reasons, by the storage rules; these only bound the input.
KeyQuery = Annotated[str, Query(max_length=4096, description="Object key in the bucket.")]
PrefixQuery = Annotated[str, Query(max_length=4096, description="Folder, ending with '/'.")]
BYTES = {"type": "string", "format": "binary"}


class Caller:
    """Who calls, in which project, and where their OIDC token comes from."""

    def __init__(self, principal: Principal, project: Project, hint: TokenHint) -> None:
        self.principal = principal
        self.project = project
        self.hint = hint

    @property
    def user(self) -> StorageUser:
        """The storage view of the caller."""
        return storage_user(self.principal)


def _hint(request: Request, principal: Principal) -> TokenHint:
    if principal.method is AuthMethod.BEARER:
        # The bearer JWT was verified by `authenticate`: it is the caller's own OIDC token.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and token and not token.startswith(API_TOKEN_PREFIX):
            return TokenHint(web_token=token)
    return TokenHint(session_id=principal.session_id)


async def _reader(
    request: Request, project: ProjectId, principal: Reader, settings: SettingsDep
) -> Caller:
    return Caller(
        principal, caller_project(principal, settings, project), _hint(request, principal)
    )


async def _writer(
    request: Request, project: ProjectId, principal: Launcher, settings: SettingsDep
) -> Caller:
    return Caller(
        principal, caller_project(principal, settings, project), _hint(request, principal)
    )


ReadCaller = Annotated[Caller, Depends(_reader)]
WriteCaller = Annotated[Caller, Depends(_writer)]


# -- models ------------------------------------------------------------------------------


class StatusOut(BaseModel):
    """Whether S3 is offered, and where."""

    configured: bool
    detail: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    path_style: bool | None = None
    bucket: str | None = None
    credentials_mode: str | None = None
    duration_seconds: int | None = None


class SnippetOut(BaseModel):
    """Ready-to-paste code using the credentials."""

    id: str
    title: str
    language: str
    code: str


class CredentialsOut(BaseModel):
    """Temporary credentials: shown once, valid until `expires_at`."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: datetime
    endpoint_url: str
    region: str
    path_style: bool
    bucket: str
    snippets: list[SnippetOut]


class ObjectOut(BaseModel):
    """An object in a listing."""

    key: str
    name: str
    size: int
    last_modified: datetime | None
    etag: str

    @classmethod
    def of(cls, entry: ObjectEntry, prefix: str) -> ObjectOut:
        """From the adapter's entry; `name` is the key inside the listed folder."""
        return cls(
            key=entry.key,
            name=entry.key[len(prefix) :],
            size=entry.size,
            last_modified=entry.last_modified,
            etag=entry.etag,
        )


class ListingOut(BaseModel):
    """One page of a folder."""

    bucket: str
    prefix: str
    folders: list[str]
    objects: list[ObjectOut]
    next_token: str | None = Field(description="Pass as `token` for the next page; null: last.")


class UploadOut(BaseModel):
    """An object stored."""

    bucket: str
    key: str
    size: int


class FolderIn(BaseModel):
    """A folder to create."""

    path: str = Field(max_length=4096)


class FolderOut(BaseModel):
    """A folder created."""

    bucket: str
    prefix: str


class MoveIn(BaseModel):
    """A move or rename: an object, or a folder when `source` ends with '/'."""

    source: str = Field(max_length=4096)
    destination: str = Field(max_length=4096)


class CountOut(BaseModel):
    """How many objects an operation touched."""

    count: int


class PresignIn(BaseModel):
    """A download link to make."""

    key: str = Field(max_length=4096)
    expires_in_seconds: int = Field(3600, description="Capped by the credentials' lifetime.")


class PresignOut(BaseModel):
    """A link that downloads without credentials until it expires."""

    url: str
    expires_at: datetime


class PublicIn(BaseModel):
    """A prefix to make public (anyone may read the objects under it)."""

    prefix: str = Field(max_length=4096)


class PublicOut(BaseModel):
    """The prefixes the platform made public in the bucket."""

    bucket: str
    public_prefixes: list[str]


class UsageOut(BaseModel):
    """What the bucket holds."""

    bucket: str
    objects: int
    bytes: int


class PreviewOut(BaseModel):
    """The head of an object."""

    key: str
    kind: str = Field(description="text, csv, json, parquet or binary.")
    size: int
    truncated: bool
    text: str | None = None
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)
    data: Any = None
    total_rows: int | None = None

    @classmethod
    def of(cls, preview: Preview) -> PreviewOut:
        """From the domain's preview."""
        return cls(
            key=preview.key,
            kind=preview.kind,
            size=preview.size,
            truncated=preview.truncated,
            text=preview.text,
            columns=list(preview.columns),
            rows=[list(r) for r in preview.rows],
            data=preview.data,
            total_rows=preview.total_rows,
        )


class InjectedOut(BaseModel):
    """S3 credentials the platform keeps fresh in a service (never the secrets)."""

    release: str
    owner: str
    bucket: str
    expires_at: datetime | None
    refreshed_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, status: InjectedStatus) -> InjectedOut:
        """From the Secret's annotations."""
        return cls(
            release=status.release,
            owner=status.owner,
            bucket=status.bucket,
            expires_at=status.expires_at,
            refreshed_at=status.refreshed_at,
            error=status.error,
        )


# -- routes ------------------------------------------------------------------------------


@router.get("", summary="S3 status of the project")
async def status(caller: ReadCaller, settings: SettingsDep, storage: StorageDep) -> StatusOut:
    """Whether S3 is configured; where the endpoint is and which bucket the project uses."""
    if not storage.configured:
        return StatusOut(configured=False, detail="S3 storage is not configured on this platform")
    endpoint = storage.endpoint()
    s3 = settings.s3
    return StatusOut(
        configured=True,
        endpoint_url=endpoint.url,
        region=endpoint.region,
        path_style=endpoint.path_style,
        bucket=storage.bucket(caller.user, caller.project),
        credentials_mode=s3.credentials_mode.value,
        duration_seconds=s3.duration_seconds,
    )


@router.post("/credentials", summary="Get temporary S3 credentials")
async def credentials(caller: WriteCaller, storage: StorageDep) -> CredentialsOut:
    """Fresh credentials for the caller's buckets, with ready-to-paste snippets."""
    issued, snippets = await storage.issue(caller.user, caller.project, caller.hint)
    creds, endpoint = issued.credentials, issued.endpoint
    return CredentialsOut(
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        expires_at=creds.expiration,
        endpoint_url=endpoint.url,
        region=endpoint.region,
        path_style=endpoint.path_style,
        bucket=issued.bucket,
        snippets=[
            SnippetOut(id=s.id, title=s.title, language=s.language, code=s.code) for s in snippets
        ],
    )


@router.get("/objects", summary="List a folder of the project's bucket")
async def list_objects(
    caller: ReadCaller,
    storage: StorageDep,
    prefix: PrefixQuery = "",
    token: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> ListingOut:
    """Sub-folders and objects of `prefix`, a page at a time (the bucket is created on first
    use)."""
    listing = await storage.list_folder(
        caller.user, caller.project, caller.hint, prefix, token, limit
    )
    return ListingOut(
        bucket=listing.bucket,
        prefix=listing.prefix,
        folders=list(listing.folders),
        objects=[ObjectOut.of(o, listing.prefix) for o in listing.objects],
        next_token=listing.next_token,
    )


@router.put(
    "/object",
    summary="Upload an object",
    status_code=201,
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": BYTES}}}},
)
async def upload(
    request: Request, caller: WriteCaller, storage: StorageDep, key: KeyQuery
) -> UploadOut:
    """The request body, streamed to the bucket (multipart past 8 MiB). Send the raw bytes
    (any content type but multipart/form-data) and, from a browser, the CSRF header."""
    content_type = request.headers.get("content-type") or "application/octet-stream"
    size = await storage.upload(
        caller.user, caller.project, caller.hint, key, request.stream(), content_type
    )
    return UploadOut(bucket=storage.bucket(caller.user, caller.project), key=key, size=size)


@router.get(
    "/object",
    summary="Download an object",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": BYTES}}}},
)
async def download(caller: ReadCaller, storage: StorageDep, key: KeyQuery) -> StreamingResponse:
    """The object's bytes, streamed, always as an attachment (never rendered by the browser)."""
    stream = await storage.download(caller.user, caller.project, caller.hint, key)
    name = key.rsplit("/", 1)[-1].replace('"', "")
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return StreamingResponse(
        stream.chunks(),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(stream.head.size),
            "Content-Disposition": f'attachment; filename="{ascii_name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@router.delete("/object", summary="Delete an object", status_code=204)
async def delete_object(caller: WriteCaller, storage: StorageDep, key: KeyQuery) -> Response:
    """Delete one object."""
    await storage.delete_object(caller.user, caller.project, caller.hint, key)
    return Response(status_code=204)


@router.delete("/prefix", summary="Delete a folder and everything in it")
async def delete_prefix(
    caller: WriteCaller,
    storage: StorageDep,
    prefix: PrefixQuery,
    confirm: Annotated[str, Query(max_length=4096, description="Repeat the folder.")] = "",
) -> CountOut:
    """Recursive: every object under `prefix`; `confirm` must repeat it."""
    count = await storage.delete_prefix(caller.user, caller.project, caller.hint, prefix, confirm)
    return CountOut(count=count)


@router.post("/folders", summary="Create a folder", status_code=201)
async def create_folder(body: FolderIn, caller: WriteCaller, storage: StorageDep) -> FolderOut:
    """An empty folder (a `path/` marker object)."""
    prefix = await storage.create_folder(caller.user, caller.project, caller.hint, body.path)
    return FolderOut(bucket=storage.bucket(caller.user, caller.project), prefix=prefix)


@router.post("/move", summary="Move or rename an object or a folder")
async def move(body: MoveIn, caller: WriteCaller, storage: StorageDep) -> CountOut:
    """Copy then delete, server side; a folder moves with everything in it."""
    count = await storage.move(
        caller.user, caller.project, caller.hint, body.source, body.destination
    )
    return CountOut(count=count)


@router.post("/presign", summary="A download link")
async def presign(body: PresignIn, caller: ReadCaller, storage: StorageDep) -> PresignOut:
    """A URL anyone can download the object with until it expires."""
    url, expires = await storage.presign(
        caller.user, caller.project, caller.hint, body.key, body.expires_in_seconds
    )
    return PresignOut(url=url, expires_at=expires)


@router.get("/public", summary="Public prefixes of the bucket")
async def public(caller: ReadCaller, storage: StorageDep) -> PublicOut:
    """The prefixes anyone may read (made public through the platform)."""
    prefixes = await storage.public_prefixes(caller.user, caller.project, caller.hint)
    return PublicOut(bucket=storage.bucket(caller.user, caller.project), public_prefixes=prefixes)


@router.post("/public", summary="Make a prefix public")
async def make_public(body: PublicIn, caller: WriteCaller, storage: StorageDep) -> PublicOut:
    """Adds the platform's statement for `prefix` to the bucket policy; others stay."""
    prefixes = await storage.set_public(caller.user, caller.project, caller.hint, body.prefix, True)
    return PublicOut(bucket=storage.bucket(caller.user, caller.project), public_prefixes=prefixes)


@router.delete("/public", summary="Make a prefix private again")
async def make_private(caller: WriteCaller, storage: StorageDep, prefix: PrefixQuery) -> PublicOut:
    """Removes the platform's statement for `prefix`; others stay."""
    prefixes = await storage.set_public(caller.user, caller.project, caller.hint, prefix, False)
    return PublicOut(bucket=storage.bucket(caller.user, caller.project), public_prefixes=prefixes)


@router.get("/usage", summary="Objects and bytes in the bucket, or under one folder")
async def usage(caller: ReadCaller, storage: StorageDep, prefix: PrefixQuery = "") -> UsageOut:
    """Counted over the whole bucket, or over the folder `prefix` (what deleting it removes)."""
    found = await storage.usage(caller.user, caller.project, caller.hint, prefix)
    return UsageOut(bucket=found.bucket, objects=found.objects, bytes=found.bytes)


@router.get("/preview", summary="The head of an object")
async def preview(
    caller: ReadCaller,
    storage: StorageDep,
    key: KeyQuery,
    lines: Annotated[int, Query(ge=1, le=200)] = 20,
) -> PreviewOut:
    """Text, CSV rows, JSON or the first rows of a Parquet file."""
    found = await storage.preview(caller.user, caller.project, caller.hint, key, lines)
    return PreviewOut.of(found)


@router.get("/services", summary="S3 credentials of the project's services")
async def injected(
    caller: ReadCaller, bootstrap: BootstrapDep, storage: StorageDep
) -> list[InjectedOut]:
    """Expiry, last renewal and last error of each service's credentials (the caller's, and
    all of them in group projects)."""
    as_user = bootstrap.impersonation(caller.principal.identity)
    statuses = await storage.injected(caller.project, as_user)
    return [
        InjectedOut.of(s)
        for s in statuses
        if s.owner == caller.principal.username or caller.project.group
    ]
