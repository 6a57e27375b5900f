"""Administration of every user's services: list, suspend, resume, delete (admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from onyxia_py.accounts.models import Principal
from onyxia_py.api.deps import (
    Admin,
    BootstrapDep,
    CacheDep,
    OutboxDep,
    ServiceLauncherDep,
    ServicesDep,
    TrackerDep,
)
from onyxia_py.api.problems import problems
from onyxia_py.api.services import Release, ServiceOut
from onyxia_py.errors import NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.lifecycle import Services
from onyxia_py.services.listing import ServiceSummary
from onyxia_py.services.outbox import AuditOutbox
from onyxia_py.services.tracker import Launch

router = APIRouter(
    prefix="/api/admin/services", tags=["administration"], responses=problems(404, 502)
)

Namespace = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
# Whom the platform acts as in a group project when an administrator changes a service there.
ADMIN_USER = "onyxia-py:admin"
ADMIN_WAIT_SECONDS = 8.0


class AdminServiceOut(ServiceOut):
    """A service of any project."""

    project: str = Field(description="The project (its namespace).")


def _line(summary: ServiceSummary, launch: Launch | None = None) -> AdminServiceOut:
    line = ServiceOut.of(summary, launch)
    return AdminServiceOut(**line.model_dump(), project=summary.meta.namespace)


def _encoded(summary: ServiceSummary) -> bytes:
    return _line(summary).model_dump_json().encode()


@router.get(
    "",
    summary="Every service of every project",
    response_model=list[AdminServiceOut],
)
async def list_all(
    _admin: Admin,
    cache: CacheDep,
    tracker: TrackerDep,
    project: Annotated[str | None, Query(max_length=63)] = None,
    owner: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """All services, newest first, optionally of one project, owner or status.

    Each project's lines are encoded once per change of that project, so listing thousands of
    services costs little more than joining them."""
    # A cold start answers within ADMIN_WAIT_SECONDS: the listing, or a 503 saying how far
    # the reading has gone.
    followed = await cache.follow_all(wait_seconds=ADMIN_WAIT_SECONDS)
    found: list[tuple[str, bytes]] = []
    namespaces = [project] if project else followed
    for namespace in namespaces:
        for summary, encoded in cache.rendered(namespace, "admin", _encoded):
            meta = summary.meta
            if owner and meta.owner != owner:
                continue
            launch = tracker.get(meta.namespace, meta.release)
            if launch is not None and launch.live:
                # A launch this server follows: its live phase, not the cached line.
                line = _line(summary, launch)
                encoded = line.model_dump_json().encode()
                if status and line.status != status:
                    continue
            elif status and summary.status != status:
                continue
            found.append((meta.created, encoded))
    found.sort(key=lambda item: item[0], reverse=True)
    return Response(b"[" + b",".join(e for _, e in found) + b"]", media_type="application/json")


async def _target(
    bootstrap: ProjectBootstrap, cache: ServiceCache, namespace: str, release: str
) -> tuple[ServiceSummary, Impersonation]:
    as_owner = await bootstrap.acting_identity(namespace, ADMIN_USER)
    if as_owner is None:
        raise NotFound(f"{namespace} is not a project")
    await cache.ensure(namespace)
    for summary in cache.summaries(namespace):
        if summary.meta.release == release:
            return summary, as_owner
    raise NotFound(f"no service {release} in {namespace}")


async def _audit(
    outbox: AuditOutbox, admin: Principal, action: str, summary: ServiceSummary
) -> None:
    await outbox.record(
        actor=admin.username,
        action=action,
        target=f"{summary.meta.namespace}/{summary.meta.release}",
        outcome="success",
        details={"owner": summary.meta.owner, "by": "admin"},
    )


async def _set_suspended(
    bootstrap: ProjectBootstrap,
    services: Services,
    cache: ServiceCache,
    admin: Principal,
    namespace: str,
    release: str,
    suspended: bool,
) -> Response:
    summary, as_owner = await _target(bootstrap, cache, namespace, release)
    await services.suspend_as(summary.meta, as_owner, suspended, actor=admin.username)
    return Response(status_code=204)


@router.post("/{namespace}/{release}/suspend", summary="Suspend anyone's service", status_code=204)
async def suspend(
    namespace: Namespace,
    release: Release,
    admin: Admin,
    bootstrap: BootstrapDep,
    services: ServicesDep,
    cache: CacheDep,
) -> Response:
    """Scale to zero, acting as the project's owner; audited as the administrator."""
    return await _set_suspended(bootstrap, services, cache, admin, namespace, release, True)


@router.post("/{namespace}/{release}/resume", summary="Resume anyone's service", status_code=204)
async def resume(
    namespace: Namespace,
    release: Release,
    admin: Admin,
    bootstrap: BootstrapDep,
    services: ServicesDep,
    cache: CacheDep,
) -> Response:
    """Back to running with its installed chart version; audited as the administrator."""
    return await _set_suspended(bootstrap, services, cache, admin, namespace, release, False)


@router.delete("/{namespace}/{release}", summary="Delete anyone's service", status_code=204)
async def delete(
    namespace: Namespace,
    release: Release,
    admin: Admin,
    bootstrap: BootstrapDep,
    launcher: ServiceLauncherDep,
    cache: CacheDep,
    outbox: OutboxDep,
) -> Response:
    """Uninstall it with its metadata and volumes, acting as the project's owner."""
    summary, as_owner = await _target(bootstrap, cache, namespace, release)
    await launcher.remove(namespace, release, as_owner)
    await _audit(outbox, admin, "service.delete", summary)
    return Response(status_code=204)
