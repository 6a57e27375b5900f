"""Onyxia's service routes (`/my-lab/services`, `/my-lab/app`, `/my-lab/events`) over our domain.

Listings come from our watch-fed cache (no Helm call; the launch values and Helm revisions that
Onyxia's `Service` carries come from two lists of the project's Secrets), launches go through
our `Launcher` (server-side values and enforcement, quota pre-flight, async install, a record
before the release), changes through `Services` and `services.removal`. Here only the shapes are
Onyxia's: a `Service` with the Helm status string, `tasks[]` and `controllers[]` that the web's
state machine reads (failed if `status` is failed; starting if `pending-install` or not every
container of the first task is ready; suspended; else running).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from onyxia_py.accounts.models import Principal
from onyxia_py.api.catalogs import visible_catalog
from onyxia_py.api.deps import (
    BootstrapDep,
    CacheDep,
    CatalogsDep,
    KubeDep,
    Reader,
    ServiceLauncherDep,
    ServicesDep,
    TrackerDep,
)
from onyxia_py.api.deps import Launcher as LaunchingUser
from onyxia_py.api.problems import problem_response, problems
from onyxia_py.catalog.core import Catalogs
from onyxia_py.errors import Invalid, NotFound, OnyxiaError
from onyxia_py.onyxia_compat.deps import OnyxiaProject
from onyxia_py.onyxia_compat.models import (
    ControllerDetailsOut,
    ControllerOut,
    CreateServiceIn,
    DeletedOut,
    InstalledOut,
    RenameIn,
    ServiceOut,
    ServiceRefIn,
    ServicesOut,
    ShareIn,
    TaskContainerOut,
    TaskOut,
    TaskStatusOut,
)
from onyxia_py.projects.models import Project
from onyxia_py.services import following, listing, removal
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.services.lifecycle import Services, masked
from onyxia_py.services.listing import ControllerBrief, PodBrief, ServiceSummary
from onyxia_py.services.models import Phase
from onyxia_py.services.tracker import Launch, LaunchTracker

# How long `/my-lab/events` streams (Onyxia's async timeout), and how often it looks.
EVENTS_SECONDS = 600.0
EVENTS_POLL_SECONDS = 2.0

ServiceId = Annotated[str, Query(alias="serviceId", max_length=53)]
_LAUNCH_PHASES = {p.value for p in Phase if not p.final}


# -- mapping (pure) ------------------------------------------------------------------------------


def helm_status(status: str, reason: str | None, revision: int) -> str:
    """The Helm status the web reads for one of our statuses: `pending-install` while there
    is no release yet or our launch is not over (the web shows starting), `failed` for every
    failure we see (a crash loop too), `uninstalling` while deleted, else `deployed` (the web
    then looks at the tasks and `suspended`)."""
    if status == listing.FAILED:
        return "failed"
    if status == listing.DELETING:
        return "uninstalling"
    if status == listing.STARTING:
        if revision == 0 or reason in _LAUNCH_PHASES:
            return "pending-install"
        if reason == "upgrading":
            return "pending-upgrade"
    return "deployed"


def flattened(values: Any, prefix: str = "") -> dict[str, str]:
    """Nested values as `a.b.c` keys with text values (strings as they are, the rest JSON)."""
    if isinstance(values, dict) and (values or not prefix):
        found: dict[str, str] = {}
        for key, value in values.items():
            found.update(flattened(value, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: values if isinstance(values, str) else json.dumps(values)}


def epoch_ms(stamp: str) -> int:
    """An ISO 8601 time in ms since the epoch (0 when unreadable)."""
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


def task_out(pod: PodBrief) -> TaskOut:
    """A pod as a task."""
    return TaskOut(
        id=pod.name,
        status=TaskStatusOut(
            status=pod.phase, reason=pod.waiting[0].reason if pod.waiting else None
        ),
        containers=[TaskContainerOut(name=n, ready=r) for n, r in pod.containers],
    )


def controller_out(kind: str, name: str, brief: ControllerBrief) -> ControllerOut:
    """A Deployment or StatefulSet; healthy when its ready replicas reach the wanted ones."""
    return ControllerOut(
        name=name,
        kind=kind,
        healthy=brief.ready >= brief.replicas,
        details=ControllerDetailsOut(desired=brief.replicas, ready=brief.ready),
    )


def service_out(
    summary: ServiceSummary,
    launch: Launch | None,
    *,
    pods: list[PodBrief],
    controllers: list[tuple[str, str, ControllerBrief]],
    suspendable: bool,
    launch_values: dict[str, Any],
    revision: int,
    app_version: str = "",
    notes: str | None = None,
) -> ServiceOut:
    """One listing line (completed by the launch this replica follows) as Onyxia's `Service`,
    with the service's launch values and Helm revision; live pods first, so the first task is
    one the web may wait for."""
    meta = summary.meta
    status, reason = following.live_status(summary, launch)
    since = meta.running_since or meta.created
    return ServiceOut(
        id=meta.release,
        name=meta.release,
        subtitle=meta.chart,
        namespace=meta.namespace,
        revision=str(revision),
        status=helm_status(status, reason, revision),
        updated=since,
        chart=f"{meta.chart}-{meta.version}",
        app_version=app_version,
        started_at=epoch_ms(since),
        urls=list(summary.urls),
        env=flattened(masked(launch_values, passwords_shown=True)),  # as Onyxia's env
        tasks=[task_out(p) for p in sorted(pods, key=lambda p: (p.terminating, p.name))],
        controllers=[controller_out(*c) for c in controllers],
        post_install_instructions=notes or None,
        suspendable=suspendable,
        suspended=status == listing.SUSPENDED,
        catalog_id=meta.catalog,
        owner=meta.owner,
        friendly_name=meta.friendly_name,
        share=meta.share,
    )


def app_version(catalogs: Catalogs, catalog_id: str, chart: str, version: str) -> str:
    """The appVersion of a chart version the catalogue offers ("" otherwise)."""
    try:
        offered = catalogs.loaded(catalog_id).chart(chart)
    except OnyxiaError:
        return ""
    found = next((v for v in offered.versions if v.version == version), None) if offered else None
    return found.app_version if found else ""


def bad_request(request: Request, exc: Invalid) -> JSONResponse:
    """An input refused, as Onyxia answers it: 400 with `errors[]`."""
    return problem_response(
        request,
        status=400,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        extensions={
            **exc.extensions,
            "errors": [{"field": e.field, "reason": e.reason} for e in exc.errors],
        },
    )


# -- routes --------------------------------------------------------------------------------------


def register(router: APIRouter) -> None:
    """Add the service routes to Onyxia's router (each takes the ONYXIA-PROJECT project)."""
    # Absent, not null, where a field has no value: the web's defaults apply to absent fields
    # only (`postInstallInstructions: null` stopped its My Services page).
    router.get(
        "/my-lab/services", summary="My services in the project", response_model_exclude_none=True
    )(list_services)
    router.get(
        "/my-lab/app",
        summary="One service",
        responses=problems(404),
        response_model_exclude_none=True,
    )(get_app)
    router.put(
        "/my-lab/app",
        summary="Launch a service (installed in the background)",
        response_model=list[InstalledOut],
        responses={400: problems(422)[422], **problems(403, 404, 409)},
    )(install)
    router.delete(
        "/my-lab/app",
        summary="Delete a service, or all mine (bulk)",
        responses=problems(403, 404),
    )(delete_app)
    for path, handler, summary in (
        ("/my-lab/app/rename", rename, "Rename a service"),
        ("/my-lab/app/share", share, "Share a service with the group, or stop"),
        ("/my-lab/app/suspend", suspend, "Suspend a service"),
        ("/my-lab/app/resume", resume, "Resume a service"),
    ):
        router.post(
            path,
            summary=summary,
            status_code=200,
            response_class=Response,
            responses={400: problems(422)[422], **problems(403, 404)},
        )(handler)
    router.get(
        "/my-lab/app/logs",
        summary="A pod's log",
        response_class=PlainTextResponse,
        responses=problems(404),
    )(logs)
    router.get(
        "/my-lab/events",
        summary="The project's Kubernetes events (server-sent, JSON in data: frames)",
        response_class=StreamingResponse,
    )(events)


async def _line(
    summary: ServiceSummary,
    cache: ServiceCache,
    tracker: LaunchTracker,
    services: Services,
    catalogs: Catalogs,
    records: dict[str, tuple[dict[str, Any], int]],
    notes: str | None = None,
) -> ServiceOut:
    meta = summary.meta
    launch_values, revision = records.get(meta.release, ({}, 0))
    return service_out(
        summary,
        tracker.get(meta.namespace, meta.release),
        pods=cache.pods(meta.namespace, meta.release),
        controllers=cache.controllers(meta.namespace, meta.release),
        suspendable=await services.suspendable(replace(meta, overrides=launch_values)),
        launch_values=launch_values,
        revision=revision,
        app_version=app_version(catalogs, meta.catalog, meta.chart, meta.version),
        notes=notes,
    )


async def _visible(
    principal: Principal, project: Project, bootstrap: BootstrapDep, cache: ServiceCache
) -> list[ServiceSummary]:
    await bootstrap.ensure(project, principal.identity)
    await cache.ensure(project.namespace)
    return listing.visible_to(cache.summaries(project.namespace), principal.username)


async def list_services(
    project: OnyxiaProject,
    principal: Reader,
    bootstrap: BootstrapDep,
    cache: CacheDep,
    tracker: TrackerDep,
    services: ServicesDep,
    catalogs: CatalogsDep,
) -> ServicesOut:
    """Mine, and in group projects the shared ones, failed and still installing included;
    from the watch-fed cache (no Helm call)."""
    found = await _visible(principal, project, bootstrap, cache)
    records = await services.launch_records(principal, project)
    lines = await asyncio.gather(
        *(_line(s, cache, tracker, services, catalogs, records) for s in found)
    )
    return ServicesOut(apps=list(lines))


async def get_app(
    service_id: ServiceId,
    project: OnyxiaProject,
    principal: Reader,
    bootstrap: BootstrapDep,
    cache: CacheDep,
    tracker: TrackerDep,
    services: ServicesDep,
    catalogs: CatalogsDep,
) -> ServiceOut:
    """One service I see, with its notes once Helm has a release; 404 otherwise."""
    try:
        notes: str | None = (await services.detail(principal, project, service_id)).notes
    except NotFound:  # no Helm release yet, or no such service: the record decides
        await services.meta(principal, project, service_id)
        notes = None
    for summary in await _visible(principal, project, bootstrap, cache):
        if summary.meta.release == service_id:
            records = await services.launch_records(principal, project)
            return await _line(summary, cache, tracker, services, catalogs, records, notes)
    raise NotFound(f"no service {service_id} in {project.id}")


async def install(
    body: CreateServiceIn,
    request: Request,
    project: OnyxiaProject,
    principal: LaunchingUser,
    catalogs: CatalogsDep,
    launcher: ServiceLauncherDep,
) -> Response:
    """Checks values and quota at once, then installs in the background (`dryRun`: checks
    only). Refused values are a 400 with `errors[]`, as Onyxia answers them."""
    spec = LaunchSpec(
        catalog=body.catalog_id,
        chart=body.package_name,
        version=body.package_version or None,
        values=body.options,
        friendly_name=body.friendly_name,
        share=body.share,
        release=body.name or None,
        whole_form=True,  # the web sends every value, computed from its own context
    )
    try:
        visible_catalog(principal, catalogs, spec.catalog, project)
        if body.dry_run:
            version, _ = await launcher.check(principal, project, spec)
            out = InstalledOut(
                name=spec.release or "",
                namespace=project.namespace,
                version=version,
                status="dry-run",
            )
        else:
            accepted = await launcher.launch(principal, project, spec)
            out = InstalledOut(
                name=accepted.release,
                namespace=accepted.namespace,
                version=accepted.version,
                status="pending-install",
                warning=accepted.warning,
            )
    except Invalid as exc:
        return bad_request(request, exc)
    return JSONResponse([out.model_dump(by_alias=True, exclude_none=True)])


async def delete_app(
    project: OnyxiaProject,
    principal: LaunchingUser,
    launcher: ServiceLauncherDep,
    services: ServicesDep,
    path: Annotated[str, Query(max_length=53)] = "",
    bulk: bool = False,
) -> DeletedOut:
    """Uninstall one of my services (`path`), or with `bulk` every one I own in the project."""
    if bulk:
        await removal.delete_owned(launcher, principal, project)
        return DeletedOut(path=path, success=True)
    if not path:
        raise NotFound("no service named: give path, or bulk=true")
    meta, as_user = await services.meta(principal, project, path)
    await removal.delete_service(launcher, principal, meta, as_user)
    return DeletedOut(path=path, success=True)


async def _change(
    request: Request,
    project: Project,
    principal: Principal,
    services: Services,
    release: str,
    **change: Any,
) -> Response:
    try:
        await services.change(principal, project, release, **change)
    except Invalid as exc:
        return bad_request(request, exc)
    return Response(status_code=200)


async def rename(
    body: RenameIn,
    request: Request,
    project: OnyxiaProject,
    principal: LaunchingUser,
    services: ServicesDep,
) -> Response:
    """A new friendly name (the owner only)."""
    return await _change(
        request,
        project,
        principal,
        services,
        body.service_id,
        friendly_name=body.friendly_name,
        share=None,
    )


async def share(
    body: ShareIn,
    request: Request,
    project: OnyxiaProject,
    principal: LaunchingUser,
    services: ServicesDep,
) -> Response:
    """Share with the group or stop (group projects, the owner only)."""
    return await _change(
        request,
        project,
        principal,
        services,
        body.service_id,
        friendly_name=None,
        share=body.share,
    )


async def suspend_or_resume(
    request: Request,
    project: Project,
    principal: Principal,
    services: Services,
    release: str,
    suspended: bool,
) -> Response:
    """Suspend or resume one of my services; 400 when its chart has no `global.suspend`."""
    meta, _ = await services.meta(principal, project, release)
    if not await services.suspendable(meta):
        return bad_request(
            request, Invalid(f"{release}'s chart cannot be suspended (it has no global.suspend)")
        )
    await services.set_suspended(principal, project, release, suspended)
    return Response(status_code=200)


async def suspend(
    body: ServiceRefIn,
    request: Request,
    project: OnyxiaProject,
    principal: LaunchingUser,
    services: ServicesDep,
) -> Response:
    """Scale to zero (`global.suspend`); 400 when the chart cannot be suspended."""
    return await suspend_or_resume(request, project, principal, services, body.service_id, True)


async def resume(
    body: ServiceRefIn,
    request: Request,
    project: OnyxiaProject,
    principal: LaunchingUser,
    services: ServicesDep,
) -> Response:
    """Back to running, with the chart version it was installed with."""
    return await suspend_or_resume(request, project, principal, services, body.service_id, False)


async def logs(
    service_id: ServiceId,
    project: OnyxiaProject,
    principal: Reader,
    services: ServicesDep,
    kube: KubeDep,
    task_id: Annotated[str | None, Query(alias="taskId", max_length=253)] = None,
) -> PlainTextResponse:
    """The whole log of the pod `taskId` (its first container), as text."""
    pod, container, as_user = await services.log_source(principal, project, service_id, task_id)
    text = await kube.logs(project.namespace, pod, container, as_=as_user)
    return PlainTextResponse(text)


async def events(
    project: OnyxiaProject, principal: Reader, bootstrap: BootstrapDep, kube: KubeDep
) -> StreamingResponse:
    """Every Kubernetes Event of the project namespace, read as the caller: those there now,
    then each new or updated one, one JSON `data:` frame each, for `EVENTS_SECONDS`."""
    await bootstrap.ensure(project, principal.identity)
    as_user = bootstrap.impersonation(principal.identity)
    # The first read answers now: a refusal is a problem, not a broken stream.
    first = await kube.list("Event", project.namespace, as_=as_user)

    async def stream() -> AsyncIterator[str]:
        seen: dict[str, str] = {}
        found = first
        ends = time.monotonic() + EVENTS_SECONDS
        while True:
            current: dict[str, str] = {}
            for event in found:
                metadata = event.get("metadata") or {}
                uid = str(metadata.get("uid", ""))
                version = str(metadata.get("resourceVersion", ""))
                current[uid] = version
                if seen.get(uid) != version:
                    yield f"data:{json.dumps(event, separators=(',', ':'))}\n\n"
            seen = current  # events Kubernetes dropped are forgotten: memory stays bounded
            if time.monotonic() + EVENTS_POLL_SECONDS > ends:
                return
            await asyncio.sleep(EVENTS_POLL_SECONDS)
            try:
                found = await kube.list("Event", project.namespace, as_=as_user)
            except OnyxiaError:
                return  # the web reconnects when the stream ends

    return StreamingResponse(stream(), media_type="text/event-stream")
