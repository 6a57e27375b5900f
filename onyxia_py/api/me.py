"""The caller's own account: who they are, their projects, their API tokens."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

import yaml
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from onyxia_py.accounts.models import ApiTokenInfo
from onyxia_py.api.catalogs import caller_project
from onyxia_py.api.deps import AccountsDep, CurrentUser, LoggedIn, Reader, SettingsDep
from onyxia_py.api.problems import problems
from onyxia_py.errors import Conflict, NotFound
from onyxia_py.projects.core import group_project, projects_of
from onyxia_py.projects.ownership import refusal

router = APIRouter(prefix="/api", tags=["account"])


class ProjectOut(BaseModel):
    """A project the caller may use."""

    id: str
    namespace: str
    group: str | None


class RefusedProjectOut(BaseModel):
    """A group of the caller that gets no project, and why."""

    group: str
    namespace: str
    reason: str


class MeOut(BaseModel):
    """The caller as the platform sees them."""

    username: str
    email: str | None
    groups: list[str]
    roles: list[str]
    is_admin: bool
    scopes: list[str]
    auth_method: str
    projects: list[ProjectOut]
    refused_projects: list[RefusedProjectOut] = Field(
        default_factory=list,
        description="Groups that get no project: their name collides with another group's.",
    )


class TokenRequest(BaseModel):
    """A request for a new personal API token."""

    name: str = Field(max_length=100, description="What the token is for.")
    scopes: list[str] = Field(description="Any of read, launch, admin.")
    expires_in_days: int | None = Field(None, description="Lifetime; default set by the operator.")


class TokenOut(BaseModel):
    """An API token as its owner sees it."""

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, info: ApiTokenInfo) -> TokenOut:
        """From the domain record."""
        return cls(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            scopes=list(info.scopes),
            created_at=info.created_at,
            expires_at=info.expires_at,
            last_used_at=info.last_used_at,
            revoked=info.revoked,
        )


class NewTokenOut(TokenOut):
    """A token just created: `token` is shown this once and never again."""

    token: str


@router.get("/me", summary="Who am I")
async def me(principal: Reader, settings: SettingsDep) -> MeOut:
    """The caller's identity, roles, scopes and projects."""
    identity = principal.identity
    projects = projects_of(identity.username, identity.groups, settings.projects)
    return MeOut(
        username=identity.username,
        email=identity.email,
        groups=list(identity.groups),
        roles=list(identity.roles),
        is_admin=principal.is_admin,
        scopes=sorted(s.value for s in principal.scopes),
        auth_method=principal.method.value,
        projects=[ProjectOut(id=p.id, namespace=p.namespace, group=p.group) for p in projects],
        refused_projects=[
            RefusedProjectOut(group=g, namespace=p.namespace, reason=refusal(g, p.namespace))
            for g in identity.refused_groups
            if (p := group_project(g, settings.projects)) is not None
        ],
    )


@router.get(
    "/me/kubeconfig",
    summary="A kubeconfig for one of my namespaces",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}}, **problems(404, 409)},
)
async def kubeconfig(
    principal: CurrentUser,
    settings: SettingsDep,
    accounts: AccountsDep,
    project: Annotated[str | None, Query(max_length=63)] = None,
) -> Response:
    """`kubectl` and `helm` as myself in the project's namespace, with my session's current
    access token (it stops working when that token expires: download a fresh one)."""
    kubernetes = settings.kubernetes
    if not kubernetes.public_url:
        raise NotFound("this platform does not expose its Kubernetes API to users")
    target = caller_project(principal, settings, project)
    token = None
    if principal.session_id is not None:
        token = await accounts.provider_access_token(principal.user_id, principal.session_id)
    if token is None:
        raise Conflict(
            "a kubeconfig carries the token of an OpenID Connect login: download it from a "
            "browser session"
        )
    name = f"onyxia-{target.id}"
    cluster: dict[str, str] = {"server": kubernetes.public_url}
    if kubernetes.public_ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(
            kubernetes.public_ca_pem.encode()
        ).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": name, "user": name, "namespace": target.namespace},
            }
        ],
        "current-context": name,
    }
    return Response(
        yaml.safe_dump(document, sort_keys=False),
        media_type="application/yaml",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="kubeconfig-{target.id}.yaml"',
        },
    )


@router.post("/tokens", summary="Create a personal API token", status_code=201)
async def create_token(
    body: TokenRequest, principal: LoggedIn, accounts: AccountsDep
) -> NewTokenOut:
    """A new token with at most the caller's rights; the secret is in this answer only."""
    created = await accounts.create_token(
        principal, name=body.name, scopes=body.scopes, days=body.expires_in_days
    )
    return NewTokenOut(**TokenOut.of(created.info).model_dump(), token=created.token)


@router.get("/tokens", summary="List my API tokens")
async def list_tokens(principal: Reader, accounts: AccountsDep) -> list[TokenOut]:
    """The caller's tokens, newest first, without their secrets."""
    return [TokenOut.of(t) for t in await accounts.list_tokens(principal)]


@router.delete(
    "/tokens/{token_id}", summary="Revoke an API token", status_code=204, responses=problems(404)
)
async def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: LoggedIn, accounts: AccountsDep
) -> Response:
    """Revoke one of the caller's tokens; it stops working at once."""
    await accounts.revoke_token(principal, token_id)
    return Response(status_code=204)
