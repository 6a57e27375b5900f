"""Services in a project: launch (async, with streamed progress), list, delete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from onyxia_py.api.catalogs import caller_project, visible_catalog
from onyxia_py.api.deps import Launcher as LaunchingUser
from onyxia_py.api.deps import PlatformDep, Reader
from onyxia_py.errors import Forbidden, NotFound
from onyxia_py.services import objects
from onyxia_py.services.launcher import Accepted, LaunchSpec
from onyxia_py.services.models import ServiceMeta

router = APIRouter(prefix="/api/projects/{project}/services", tags=["services"])

ProjectId = Annotated[str, Path(max_length=63)]
Release = Annotated[str, Path(max_length=53, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class LaunchIn(BaseModel):
    """What to launch: a chart of a catalogue, and only the values the user changes."""

    catalog: str = Field(max_length=63)
    chart: str = Field(max_length=253)
    version: str | None = Field(None, max_length=64)
    values: dict[str, Any] = Field(default_factory=dict)
    friendly_name: str | None = Field(None, max_length=100)
    share: bool = Field(False, description="Visible to the group (group projects only).")
    keep_on_failure: bool = Field(False, description="Keep a failed release to inspect it.")


class AcceptedOut(BaseModel):
    """A launch in progress."""

    id: str
    release: str
    namespace: str
    version: str
    events_url: str

    @classmethod
    def of(cls, accepted: Accepted, project_id: str) -> AcceptedOut:
        """From the launcher's answer."""
        return cls(
            id=accepted.release,
            release=accepted.release,
            namespace=accepted.namespace,
            version=accepted.version,
            events_url=f"/api/projects/{project_id}/services/{accepted.release}/events",
        )


class ServiceOut(BaseModel):
    """A service of the project."""

    id: str
    friendly_name: str
    catalog: str
    chart: str
    version: str
    owner: str
    share: bool
    created: str
    status: str
    reason: str | None = None
    running_since: str | None = Field(None, description="Last launch or resume; null if suspended.")
    gpus: int = 0

    @classmethod
    def of(cls, meta: ServiceMeta, status: str, reason: str | None = None) -> ServiceOut:
        """From a service's metadata and its status."""
        return cls(
            id=meta.release,
            friendly_name=meta.friendly_name,
            catalog=meta.catalog,
            chart=meta.chart,
            version=meta.version,
            owner=meta.owner,
            share=meta.share,
            created=meta.created,
            status=status,
            reason=reason,
            running_since=meta.running_since or None,
            gpus=meta.gpus,
        )


@router.post("", summary="Launch a service", status_code=202)
async def launch(
    project: ProjectId, body: LaunchIn, principal: LaunchingUser, platform: PlatformDep
) -> AcceptedOut:
    """Checks values and quota at once, then installs in the background (follow `events_url`)."""
    target = caller_project(principal, platform, project)
    visible_catalog(principal, platform, body.catalog, target)
    accepted = await platform.launcher.launch(
        principal,
        target,
        LaunchSpec(
            catalog=body.catalog,
            chart=body.chart,
            version=body.version,
            values=body.values,
            friendly_name=body.friendly_name,
            share=body.share,
            keep_on_failure=body.keep_on_failure,
        ),
    )
    return AcceptedOut.of(accepted, target.id)


@router.get("/{release}/events", summary="Follow a launch (server-sent events)")
async def events(
    project: ProjectId, release: Release, principal: Reader, platform: PlatformDep
) -> StreamingResponse:
    """One `phase` event per step (accepted, installing, scheduled, ..., running or failed)."""
    target = caller_project(principal, platform, project)
    launch = platform.tracker.get(target.namespace, release)
    if launch is None:
        raise NotFound(f"no launch of {release} is followed by this server")
    if launch.owner != principal.username:
        raise NotFound(f"no launch of {release} is followed by this server")

    async def stream() -> AsyncIterator[str]:
        async for event in platform.tracker.follow(launch):
            data = {
                "phase": event.phase.value,
                "message": event.message,
                "reason": event.reason.value if event.reason else None,
                "at": event.at.isoformat(),
            }
            yield f"event: phase\ndata: {json.dumps(data)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


@router.get("", summary="Services of a project")
async def list_services(
    project: ProjectId, principal: Reader, platform: PlatformDep
) -> list[ServiceOut]:
    """Mine, and in group projects the shared ones; failed and pending ones included."""
    target = caller_project(principal, platform, project)
    await platform.bootstrap.ensure(target, principal.identity)
    as_user = platform.bootstrap.impersonation(principal.identity)
    metas = await platform.kube.list(
        "Secret", target.namespace, label_selector=objects.RELEASE_LABEL, as_=as_user
    )
    helm_secrets = await platform.kube.list(
        "Secret", target.namespace, label_selector="owner=helm", metadata_only=True, as_=as_user
    )
    latest: dict[str, tuple[int, str]] = {}
    for secret in helm_secrets:
        labels = secret["metadata"].get("labels") or {}
        version = int(labels.get("version", "0") or 0)
        name = labels.get("name", "")
        if version >= latest.get(name, (0, ""))[0]:
            latest[name] = (version, labels.get("status", "unknown"))
    found = []
    for secret in metas:
        meta = objects.read_meta(secret)
        if meta.owner != principal.username and not meta.share:
            continue
        status, reason = latest.get(meta.release, (0, "pending"))[1], None
        launch = platform.tracker.get(target.namespace, meta.release)
        if launch is not None and not launch.phase.final:
            status = launch.phase.value
        elif launch is not None and launch.events[-1].reason is not None:
            status, reason = "failed", launch.events[-1].message
        found.append(ServiceOut.of(meta, status, reason))
    return sorted(found, key=lambda s: s.created, reverse=True)


@router.delete("/{release}", summary="Delete a service", status_code=204)
async def delete(
    project: ProjectId, release: Release, principal: LaunchingUser, platform: PlatformDep
) -> Response:
    """Uninstall the release and delete its metadata and volumes (its owner only)."""
    target = caller_project(principal, platform, project)
    meta, as_user = await platform.services.meta(principal, target, release)
    if meta.owner != principal.username:
        raise Forbidden(f"{release} belongs to {meta.owner}: only they can delete it")
    await platform.launcher.remove(target.namespace, release, as_user)
    await platform.audit.record(
        actor=principal.username,
        action="service.delete",
        target=f"{target.namespace}/{release}",
        outcome="success",
    )
    return Response(status_code=204)


class ContainerOut(BaseModel):
    """A container's readiness."""

    name: str
    ready: bool
    restarts: int
    waiting: str | None


class PodOut(BaseModel):
    """A pod of the service."""

    name: str
    phase: str
    ready: bool
    containers: list[ContainerOut]


class ServiceDetailOut(BaseModel):
    """One service in detail (secret-looking values masked)."""

    id: str
    friendly_name: str
    catalog: str
    chart: str
    version: str
    owner: str
    share: bool
    created: str
    status: str
    suspended: bool
    urls: list[str]
    notes: str
    values: dict[str, Any]
    pods: list[PodOut]


@router.get("/{release}", summary="One service")
async def get_service(
    project: ProjectId, release: Release, principal: Reader, platform: PlatformDep
) -> ServiceDetailOut:
    """Status, URLs, notes, values (secrets masked) and pods with their containers."""
    target = caller_project(principal, platform, project)
    detail = await platform.services.detail(principal, target, release)
    meta = detail.meta
    return ServiceDetailOut(
        id=meta.release,
        friendly_name=meta.friendly_name,
        catalog=meta.catalog,
        chart=meta.chart,
        version=meta.version,
        owner=meta.owner,
        share=meta.share,
        created=meta.created,
        status=detail.status,
        suspended=detail.suspended,
        urls=list(detail.urls),
        notes=detail.notes,
        values=detail.values,
        pods=[
            PodOut(
                name=p.name,
                phase=p.phase,
                ready=p.ready,
                containers=[
                    ContainerOut(name=c.name, ready=c.ready, restarts=c.restarts, waiting=c.waiting)
                    for c in p.containers
                ],
            )
            for p in detail.pods
        ],
    )


@router.post("/{release}/suspend", summary="Suspend a service (scale to zero)", status_code=204)
async def suspend(
    project: ProjectId, release: Release, principal: LaunchingUser, platform: PlatformDep
) -> Response:
    """Sets `global.suspend`; the volumes and settings stay."""
    target = caller_project(principal, platform, project)
    await platform.services.set_suspended(principal, target, release, True)
    return Response(status_code=204)


@router.post("/{release}/resume", summary="Resume a suspended service", status_code=204)
async def resume(
    project: ProjectId, release: Release, principal: LaunchingUser, platform: PlatformDep
) -> Response:
    """Back to running, with the chart version it was installed with."""
    target = caller_project(principal, platform, project)
    await platform.services.set_suspended(principal, target, release, False)
    return Response(status_code=204)


class ServiceChange(BaseModel):
    """A new name, and/or sharing with the group."""

    friendly_name: str | None = Field(None, min_length=1, max_length=100)
    share: bool | None = None


@router.patch("/{release}", summary="Rename or share a service")
async def change(
    project: ProjectId,
    release: Release,
    body: ServiceChange,
    principal: LaunchingUser,
    platform: PlatformDep,
) -> ServiceOut:
    """Change the friendly name, or share/unshare in a group project (the owner only)."""
    target = caller_project(principal, platform, project)
    meta = await platform.services.change(
        principal, target, release, friendly_name=body.friendly_name, share=body.share
    )
    detail = await platform.services.detail(principal, target, release)
    return ServiceOut.of(meta, detail.status)


@router.post("/{release}/relaunch", summary="Launch the same thing again", status_code=202)
async def relaunch(
    project: ProjectId, release: Release, principal: LaunchingUser, platform: PlatformDep
) -> AcceptedOut:
    """A new service from the same catalogue, chart, version and changed values."""
    target = caller_project(principal, platform, project)
    meta, _ = await platform.services.meta(principal, target, release)
    visible_catalog(principal, platform, meta.catalog, target)  # access may have been revoked
    accepted = await platform.launcher.launch(
        principal,
        target,
        LaunchSpec(
            catalog=meta.catalog,
            chart=meta.chart,
            version=meta.version,
            values=meta.overrides,
            friendly_name=meta.friendly_name,
        ),
    )
    return AcceptedOut.of(accepted, target.id)


class LogsOut(BaseModel):
    """The last lines of one container's log."""

    pod: str
    container: str
    lines: list[str]


@router.get("/{release}/logs", summary="Logs of a service's container (follow: SSE)")
async def logs(
    project: ProjectId,
    release: Release,
    principal: Reader,
    platform: PlatformDep,
    pod: Annotated[str | None, Query(max_length=253)] = None,
    container: Annotated[str | None, Query(max_length=63)] = None,
    tail: Annotated[int, Query(ge=0, le=10000)] = 200,
    follow: bool = False,
) -> Response:
    """The last `tail` lines; with `follow`, a server-sent `line` event per new line."""
    target = caller_project(principal, platform, project)
    detail = await platform.services.detail(principal, target, release)
    chosen = next((p for p in detail.pods if pod in (None, p.name)), None)
    if chosen is None:
        raise NotFound(f"{release} has no pod {pod!r}" if pod else f"{release} has no pod yet")
    names = [c.name for c in chosen.containers]
    name = container or (names[0] if names else None)
    if name is None or (container is not None and container not in names):
        raise NotFound(f"pod {chosen.name} has no container {container!r}")
    as_user = platform.bootstrap.impersonation(principal.identity)
    if not follow:
        text = await platform.kube.logs(target.namespace, chosen.name, name, tail=tail, as_=as_user)
        return JSONResponse(
            LogsOut(pod=chosen.name, container=name, lines=text.splitlines()).model_dump()
        )

    async def stream() -> AsyncIterator[str]:
        async for line in platform.kube.follow_logs(
            target.namespace, chosen.name, name, tail=tail, as_=as_user
        ):
            yield f"event: line\ndata: {json.dumps(line)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
