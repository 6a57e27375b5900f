"""Administration of every user's services: list, suspend, resume, delete (admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import Admin, Platform, PlatformDep
from onyxia_py.api.services import Release, ServiceOut
from onyxia_py.errors import NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.services.listing import ServiceSummary

router = APIRouter(prefix="/api/admin/services", tags=["administration"])

Namespace = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
# Whom the platform acts as in a group project when an administrator changes a service there.
ADMIN_USER = "onyxia-py:admin"


class AdminServiceOut(ServiceOut):
    """A service of any project."""

    project: str = Field(description="The project (its namespace).")


@router.get("", summary="Every service of every project")
async def list_all(
    _admin: Admin,
    platform: PlatformDep,
    project: Annotated[str | None, Query(max_length=63)] = None,
    owner: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> list[AdminServiceOut]:
    """All services, newest first, optionally of one project, owner or status."""
    found = []
    for summary in await platform.cache.everything():
        meta = summary.meta
        line = ServiceOut.of(summary, platform.tracker.get(meta.namespace, meta.release))
        if project and meta.namespace != project:
            continue
        if owner and meta.owner != owner:
            continue
        if status and line.status != status:
            continue
        found.append(AdminServiceOut(**line.model_dump(), project=meta.namespace))
    return sorted(found, key=lambda s: s.created, reverse=True)


async def _target(
    platform: Platform, namespace: str, release: str
) -> tuple[ServiceSummary, Impersonation]:
    as_owner = await platform.bootstrap.acting_identity(namespace, ADMIN_USER)
    if as_owner is None:
        raise NotFound(f"{namespace} is not a project")
    await platform.cache.ensure(namespace)
    for summary in platform.cache.summaries(namespace):
        if summary.meta.release == release:
            return summary, as_owner
    raise NotFound(f"no service {release} in {namespace}")


async def _audit(
    platform: Platform, admin: Principal, action: str, summary: ServiceSummary
) -> None:
    await platform.audit.record(
        actor=admin.username,
        action=action,
        target=f"{summary.meta.namespace}/{summary.meta.release}",
        outcome="success",
        details={"owner": summary.meta.owner, "by": "admin"},
    )


@router.post("/{namespace}/{release}/suspend", summary="Suspend anyone's service", status_code=204)
async def suspend(
    namespace: Namespace, release: Release, admin: Admin, platform: PlatformDep
) -> Response:
    """Scale to zero, acting as the project's owner; audited as the administrator."""
    summary, as_owner = await _target(platform, namespace, release)
    await platform.services.suspend_as(summary.meta, as_owner, True, actor=admin.username)
    return Response(status_code=204)


@router.post("/{namespace}/{release}/resume", summary="Resume anyone's service", status_code=204)
async def resume(
    namespace: Namespace, release: Release, admin: Admin, platform: PlatformDep
) -> Response:
    """Back to running with its installed chart version; audited as the administrator."""
    summary, as_owner = await _target(platform, namespace, release)
    await platform.services.suspend_as(summary.meta, as_owner, False, actor=admin.username)
    return Response(status_code=204)


@router.delete("/{namespace}/{release}", summary="Delete anyone's service", status_code=204)
async def delete(
    namespace: Namespace, release: Release, admin: Admin, platform: PlatformDep
) -> Response:
    """Uninstall it with its metadata and volumes, acting as the project's owner."""
    summary, as_owner = await _target(platform, namespace, release)
    await platform.launcher.remove(namespace, release, as_owner)
    await _audit(platform, admin, "service.delete", summary)
    return Response(status_code=204)
