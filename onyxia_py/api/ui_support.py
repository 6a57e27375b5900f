"""Small read-only routes the web pages need: a project's quota use, a live feed of a project's
services (server-sent events), and every project's quota for administrators."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from onyxia_py.api.catalogs import caller_project
from onyxia_py.api.deps import (
    Admin,
    BootstrapDep,
    CacheDep,
    KubeDep,
    Reader,
    SettingsDep,
    TrackerDep,
)
from onyxia_py.api.openapi import event_stream
from onyxia_py.api.services import list_services
from onyxia_py.errors import NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.projects.models import Project
from onyxia_py.projects.objects import IGNORE_ANNOTATION, OWNER_LABEL, QUOTA_NAME
from onyxia_py.quantities import human, quantity_or_none

router = APIRouter(tags=["web pages"])

ProjectId = Annotated[str, Path(max_length=63)]
WATCH_PERIOD_SECONDS = 3.0
WATCH_KEEPALIVE_SECONDS = 15.0
WATCH_MAX_SECONDS = 600.0


# What people call the usual quota keys.
QUOTA_LABELS = {
    "requests.cpu": "CPU guaranteed",
    "limits.cpu": "CPU maximum",
    "requests.memory": "Memory guaranteed",
    "limits.memory": "Memory maximum",
    "requests.storage": "Storage",
    "requests.ephemeral-storage": "Scratch space",
    "requests.nvidia.com/gpu": "GPUs",
    "count/pods": "Pods",
    "pods": "Pods",
    "persistentvolumeclaims": "Volumes",
    "count/persistentvolumeclaims": "Volumes",
    "services": "Kubernetes services",
}


class QuotaLineOut(BaseModel):
    """One resource of a project's quota: what is used of what is allowed."""

    resource: str
    label: str
    used: str
    hard: str
    used_text: str
    hard_text: str
    percent: int


class ProjectQuotaOut(BaseModel):
    """A project's quota (administrators' view)."""

    namespace: str
    owner: str
    ignored: bool
    lines: list[QuotaLineOut]


def _amount(resource: str, amount: Decimal | None, raw: str, counted: bool) -> str:
    if amount is None:
        return raw
    if counted:
        return format(amount.normalize(), "f")
    return human(resource, amount)


def quota_lines(quota: dict[str, Any] | None) -> list[QuotaLineOut]:
    """The lines of a ResourceQuota object, in the order of its `hard` keys."""
    if not quota:
        return []
    status = quota.get("status") or {}
    hard: dict[str, str] = status.get("hard") or (quota.get("spec") or {}).get("hard") or {}
    used: dict[str, str] = status.get("used") or {}
    lines = []
    for resource, limit in hard.items():
        taken = used.get(resource, "0")
        amount, cap = quantity_or_none(taken), quantity_or_none(limit)
        percent = percent_of(amount, cap) if amount is not None and cap is not None else 0
        name = resource.removeprefix("requests.").removeprefix("limits.")
        counted = resource.startswith("count/") or ("/" not in resource and "." not in resource)
        lines.append(
            QuotaLineOut(
                resource=resource,
                label=QUOTA_LABELS.get(resource, resource),
                used=str(taken),
                hard=str(limit),
                used_text=_amount(name, amount, str(taken), counted),
                hard_text=_amount(name, cap, str(limit), counted),
                percent=percent,
            )
        )
    return lines


async def project_quota_lines(
    kube: KubeClient, project: Project, as_user: Impersonation
) -> list[QuotaLineOut]:
    """The quota use of `project`, read as its member (empty when it has no quota)."""
    try:
        quota = await kube.get("ResourceQuota", QUOTA_NAME, project.namespace, as_=as_user)
    except NotFound:
        return []
    return quota_lines(quota)


@router.get("/api/projects/{project}/quota", summary="Quota use of a project")
async def project_quota(
    project: ProjectId,
    principal: Reader,
    settings: SettingsDep,
    bootstrap: BootstrapDep,
    kube: KubeDep,
) -> list[QuotaLineOut]:
    """Used and hard amount per resource of the project's quota (empty without one)."""
    target = caller_project(principal, settings, project)
    await bootstrap.ensure(target, principal.identity)
    return await project_quota_lines(kube, target, bootstrap.impersonation(principal.identity))


@router.get(
    "/api/projects/{project}/watch",
    summary="Follow a project's services (SSE)",
    response_class=StreamingResponse,
    responses=event_stream("snapshot", "a JSON object: services and quota (as listed)"),
)
async def watch(
    request: Request,
    project: ProjectId,
    principal: Reader,
    settings: SettingsDep,
    bootstrap: BootstrapDep,
    cache: CacheDep,
    tracker: TrackerDep,
    kube: KubeDep,
) -> StreamingResponse:
    """A `snapshot` event with the services and the quota use whenever they change (checked
    every few seconds); the stream ends after ten minutes, clients reconnect."""
    target = caller_project(principal, settings, project)
    as_user = bootstrap.impersonation(principal.identity)

    async def snapshot() -> str:
        services = await list_services(target.id, principal, settings, bootstrap, cache, tracker)
        quota = await project_quota_lines(kube, target, as_user)
        body = {
            "services": [s.model_dump() for s in services],
            "quota": [q.model_dump() for q in quota],
        }
        return json.dumps(body, sort_keys=True)

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        started = quiet_since = loop.time()
        last = ""
        while loop.time() - started < WATCH_MAX_SECONDS:
            current = await snapshot()
            if current != last:
                last, quiet_since = current, loop.time()
                yield f"event: snapshot\ndata: {current}\n\n"
            elif loop.time() - quiet_since > WATCH_KEEPALIVE_SECONDS:
                quiet_since = loop.time()
                yield ": keep-alive\n\n"
            await asyncio.sleep(WATCH_PERIOD_SECONDS)
            if await request.is_disconnected():
                return

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


@router.get("/api/admin/quotas", summary="Every project's quota use")
async def admin_quotas(_admin: Admin, kube: KubeDep) -> list[ProjectQuotaOut]:
    """The quota of each project namespace (labelled `onyxia_owner`), fullest first."""
    namespaces = await kube.list("Namespace", label_selector=OWNER_LABEL)
    quotas = await kube.list("ResourceQuota", field_selector=f"metadata.name={QUOTA_NAME}")
    by_namespace = {q["metadata"]["namespace"]: q for q in quotas}
    found = []
    for namespace in namespaces:
        meta = namespace["metadata"]
        quota = by_namespace.get(meta["name"])
        annotations = ((quota or {}).get("metadata") or {}).get("annotations") or {}
        found.append(
            ProjectQuotaOut(
                namespace=meta["name"],
                owner=(meta.get("labels") or {}).get(OWNER_LABEL, ""),
                ignored=IGNORE_ANNOTATION in annotations,
                lines=quota_lines(quota),
            )
        )
    return sorted(found, key=lambda p: (-max((q.percent for q in p.lines), default=0), p.namespace))


def percent_of(used: Decimal, hard: Decimal) -> int:
    """`used` as a whole percentage of `hard` (0 when `hard` is zero)."""
    return min(100, int(used * 100 / hard)) if hard else 0
