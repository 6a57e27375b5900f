"""Services in a project: launch (async, with streamed progress), list, delete."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from onyxia_py.accounts.models import Principal
from onyxia_py.api.catalogs import caller_project, visible_catalog
from onyxia_py.api.deps import (
    BootstrapDep,
    CacheDep,
    CatalogsDep,
    KubeDep,
    Reader,
    ServiceLauncherDep,
    ServicesDep,
    SettingsDep,
    TrackerDep,
)
from onyxia_py.api.deps import Launcher as LaunchingUser
from onyxia_py.api.openapi import event_stream
from onyxia_py.api.problems import problems
from onyxia_py.catalog.core import Catalogs
from onyxia_py.errors import NotFound
from onyxia_py.projects.models import Project
from onyxia_py.services import following, listing, removal
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.launcher import Accepted, LaunchSpec
from onyxia_py.services.launcher import Launcher as ServiceLauncher
from onyxia_py.services.listing import ServiceSummary
from onyxia_py.services.models import LaunchEvent, Phase, ServiceMeta
from onyxia_py.services.tracker import Launch

router = APIRouter(
    prefix="/api/projects/{project}/services",
    tags=["services"],
    responses=problems(404, 409, 502),
)

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
    warning: str | None = Field(
        None, description="Something the service will lack (e.g. S3 credentials), in words."
    )

    @classmethod
    def of(cls, accepted: Accepted, project_id: str) -> AcceptedOut:
        """From the launcher's answer."""
        return cls(
            id=accepted.release,
            release=accepted.release,
            namespace=accepted.namespace,
            version=accepted.version,
            events_url=f"/api/projects/{project_id}/services/{accepted.release}/events",
            warning=accepted.warning,
        )


def launch_warning(meta: ServiceMeta) -> str | None:
    """The warning the launch was accepted with, kept on the record's first step."""
    accepted = next((e for e in meta.events if e.phase is Phase.ACCEPTED), None)
    warning = accepted.message.partition("; warning: ")[2] if accepted else ""
    return warning or None


class ServiceOut(BaseModel):
    """A service of the project, as listed."""

    id: str
    friendly_name: str
    catalog: str
    chart: str
    version: str
    owner: str
    share: bool
    status: str = Field(description="starting, running, suspended, failed or deleting.")
    reason: str | None = Field(None, description="Why it is starting, failed, ... in words.")
    urls: list[str] = Field(default_factory=list)
    created: str
    started: str | None = Field(None, description="When its pods started (running only).")
    running_since: str | None = Field(None, description="Last launch or resume; null if suspended.")
    requests: dict[str, str] = Field(
        default_factory=dict, description="Resources its pods request (cpu, memory, GPUs)."
    )
    gpus: int = 0
    launch_warning: str | None = Field(
        None,
        description="What went wrong without stopping the launch (e.g. S3 credentials could "
        "not be issued: the service started without them).",
    )
    s3_credentials_expire: str | None = Field(
        None,
        description="When the S3 credentials the chart copied into its own settings stop "
        "working (the platform renews only its own Secret, `onyxia-s3-<release>`): relaunch "
        "the service then. Null when the chart reads the renewed Secret, or has no S3.",
    )

    @classmethod
    def of(cls, summary: ServiceSummary, launch: Launch | None = None) -> ServiceOut:
        """From a listing line, with the progress of a launch this server follows."""
        meta = summary.meta
        status, reason = following.live_status(summary, launch)
        return cls(
            id=meta.release,
            friendly_name=meta.friendly_name,
            catalog=meta.catalog,
            chart=meta.chart,
            version=meta.version,
            owner=meta.owner,
            share=meta.share,
            status=status,
            reason=reason,
            urls=list(summary.urls),
            created=meta.created,
            started=summary.started,
            running_since=meta.running_since or None,
            requests=summary.requests,
            gpus=summary.gpus,
            s3_credentials_expire=meta.s3_copied_until or None,
            launch_warning=launch_warning(meta),
        )


async def listed(cache: ServiceCache, namespace: str, release: str) -> ServiceSummary:
    """The listing line of one service (the caller's right to see it is checked before)."""
    await cache.ensure(namespace)
    for summary in cache.summaries(namespace):
        if summary.meta.release == release:
            return summary
    raise NotFound(f"no service {release} in {namespace}")


@router.post("", summary="Launch a service", status_code=202)
async def launch(
    project: ProjectId,
    body: LaunchIn,
    principal: LaunchingUser,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launcher: ServiceLauncherDep,
) -> AcceptedOut:
    """Checks values and quota at once, then installs in the background (follow `events_url`)."""
    return await start_launch(
        principal,
        catalogs,
        launcher,
        caller_project(principal, settings, project),
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


async def start_launch(
    principal: Principal,
    catalogs: Catalogs,
    launcher: ServiceLauncher,
    target: Project,
    spec: LaunchSpec,
) -> AcceptedOut:
    """Launch `spec` in `target` if its catalogue is (still) visible to the caller there."""
    visible_catalog(principal, catalogs, spec.catalog, target)
    accepted = await launcher.launch(principal, target, spec)
    return AcceptedOut.of(accepted, target.id)


@router.get(
    "/{release}/events",
    summary="Follow a launch (server-sent events)",
    response_class=StreamingResponse,
    responses=event_stream("phase", "a JSON object: phase, message, reason and at"),
)
async def events(
    project: ProjectId,
    release: Release,
    principal: Reader,
    settings: SettingsDep,
    cache: CacheDep,
    tracker: TrackerDep,
) -> StreamingResponse:
    """One `phase` event per step (accepted, installing, scheduled, ..., running or failed),
    from whichever replica: the one running the launch streams it from memory, the others
    from the service's record in the cluster."""
    target = caller_project(principal, settings, project)
    launch = tracker.get(target.namespace, release)
    followed: AsyncIterator[LaunchEvent]
    if launch is not None:
        if launch.owner != principal.username:
            raise NotFound(f"no launch of {release} to follow")
        followed = tracker.follow(launch)
    else:
        await cache.ensure(target.namespace)
        summary = following.find(cache, target.namespace, release)
        ended = cache.ended_events(target.namespace, release)
        if summary is None and ended is None:
            raise NotFound(f"no launch of {release} to follow")
        if summary is not None and summary.meta.owner != principal.username:
            raise NotFound(f"no launch of {release} to follow")
        followed = following.recorded(cache, target.namespace, release)

    async def stream() -> AsyncIterator[str]:
        async for event in followed:
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
    project: ProjectId,
    principal: Reader,
    settings: SettingsDep,
    bootstrap: BootstrapDep,
    cache: CacheDep,
    tracker: TrackerDep,
) -> list[ServiceOut]:
    """Mine, and in group projects the shared ones; failed and pending ones included.

    Served from the watch-fed cache: no Helm call, and no API server round trip once the
    project is followed."""
    target = caller_project(principal, settings, project)
    await bootstrap.ensure(target, principal.identity)
    await cache.ensure(target.namespace)
    return [
        ServiceOut.of(summary, tracker.get(target.namespace, summary.meta.release))
        for summary in listing.visible_to(cache.summaries(target.namespace), principal.username)
    ]


class DeletedOut(BaseModel):
    """The services a bulk delete removed."""

    deleted: list[str]


@router.delete("", summary="Delete all my services in the project")
async def delete_mine(
    project: ProjectId,
    principal: LaunchingUser,
    settings: SettingsDep,
    launcher: ServiceLauncherDep,
) -> DeletedOut:
    """Every service the caller owns in the project (shared ones of others stay)."""
    target = caller_project(principal, settings, project)
    return DeletedOut(deleted=await removal.delete_owned(launcher, principal, target))


@router.delete("/{release}", summary="Delete a service", status_code=204)
async def delete(
    project: ProjectId,
    release: Release,
    principal: LaunchingUser,
    settings: SettingsDep,
    launcher: ServiceLauncherDep,
    services: ServicesDep,
) -> Response:
    """Uninstall the release and delete its metadata and volumes (its owner only)."""
    target = caller_project(principal, settings, project)
    meta, as_user = await services.meta(principal, target, release)
    await removal.delete_service(launcher, principal, meta, as_user)
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


class ControllerOut(BaseModel):
    """A Deployment or StatefulSet of the service."""

    kind: str
    name: str
    replicas: int
    ready: int


class EventOut(BaseModel):
    """A Kubernetes event about one of the service's objects."""

    type: str
    reason: str
    message: str
    object: str
    count: int
    last_seen: str | None


class ServiceDetailOut(ServiceOut):
    """One service in detail (secret-looking values masked)."""

    helm_status: str
    revision: int
    suspended: bool
    notes: str
    values: dict[str, Any]
    pods: list[PodOut]
    controllers: list[ControllerOut]
    events: list[EventOut]


@router.get("/{release}", summary="One service")
async def get_service(
    project: ProjectId,
    release: Release,
    principal: Reader,
    settings: SettingsDep,
    services: ServicesDep,
    cache: CacheDep,
    tracker: TrackerDep,
) -> ServiceDetailOut:
    """Status, URLs, notes, values (secrets masked) and pods with their containers."""
    target = caller_project(principal, settings, project)
    detail = await services.detail(principal, target, release)
    line = ServiceOut.of(
        await listed(cache, target.namespace, release),
        tracker.get(target.namespace, release),
    )
    return ServiceDetailOut(
        **line.model_dump(),
        helm_status=detail.status,
        revision=detail.revision,
        suspended=detail.suspended,
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
        controllers=[ControllerOut(**vars(c)) for c in detail.controllers],
        events=[EventOut(**vars(e)) for e in detail.events],
    )


@router.post("/{release}/suspend", summary="Suspend a service (scale to zero)", status_code=204)
async def suspend(
    project: ProjectId,
    release: Release,
    principal: LaunchingUser,
    settings: SettingsDep,
    services: ServicesDep,
) -> Response:
    """Sets `global.suspend`; the volumes and settings stay."""
    target = caller_project(principal, settings, project)
    await services.set_suspended(principal, target, release, True)
    return Response(status_code=204)


@router.post("/{release}/resume", summary="Resume a suspended service", status_code=204)
async def resume(
    project: ProjectId,
    release: Release,
    principal: LaunchingUser,
    settings: SettingsDep,
    services: ServicesDep,
) -> Response:
    """Back to running, with the chart version it was installed with."""
    target = caller_project(principal, settings, project)
    await services.set_suspended(principal, target, release, False)
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
    settings: SettingsDep,
    services: ServicesDep,
    cache: CacheDep,
    tracker: TrackerDep,
) -> ServiceOut:
    """Change the friendly name, or share/unshare in a group project (the owner only)."""
    target = caller_project(principal, settings, project)
    await services.change(
        principal, target, release, friendly_name=body.friendly_name, share=body.share
    )
    return ServiceOut.of(
        await listed(cache, target.namespace, release),
        tracker.get(target.namespace, release),
    )


@router.post("/{release}/relaunch", summary="Launch the same thing again", status_code=202)
async def relaunch(
    project: ProjectId,
    release: Release,
    principal: LaunchingUser,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launcher: ServiceLauncherDep,
    services: ServicesDep,
) -> AcceptedOut:
    """A new service from the same catalogue, chart, version and changed values."""
    target = caller_project(principal, settings, project)
    meta, _ = await services.meta(principal, target, release)
    return await start_launch(
        principal,
        catalogs,
        launcher,
        target,
        LaunchSpec(
            catalog=meta.catalog,
            chart=meta.chart,
            version=meta.version,
            values=meta.overrides,
            friendly_name=meta.friendly_name,
        ),
    )


class LogsOut(BaseModel):
    """The last lines of one container's log."""

    pod: str
    container: str
    lines: list[str]


@router.get(
    "/{release}/logs",
    summary="Logs of a service's container (follow: SSE)",
    responses={
        200: {
            "description": "The lines; with `follow`, a server-sent `line` event per line, "
            "whose data is the line as a JSON string",
            "model": LogsOut,
            "content": event_stream("line", "the line as a JSON string")[200]["content"],
        }
    },
)
async def logs(
    project: ProjectId,
    release: Release,
    principal: Reader,
    settings: SettingsDep,
    services: ServicesDep,
    kube: KubeDep,
    pod: Annotated[str | None, Query(max_length=253)] = None,
    container: Annotated[str | None, Query(max_length=63)] = None,
    tail: Annotated[int, Query(ge=0, le=10000)] = 200,
    follow: bool = False,
) -> Response:
    """The last `tail` lines; with `follow`, a server-sent `line` event per new line."""
    target = caller_project(principal, settings, project)
    pod_name, name, as_user = await services.log_source(principal, target, release, pod, container)
    if not follow:
        text = await kube.logs(target.namespace, pod_name, name, tail=tail, as_=as_user)
        return JSONResponse(
            LogsOut(pod=pod_name, container=name, lines=text.splitlines()).model_dump()
        )

    async def stream() -> AsyncIterator[str]:
        async for line in kube.follow_logs(
            target.namespace, pod_name, name, tail=tail, as_=as_user
        ):
            yield f"event: line\ndata: {json.dumps(line)}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
