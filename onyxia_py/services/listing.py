"""What a service listing shows, computed from the objects of a project (pure, no I/O).

`ProjectObjects` holds the compact parts of the objects the watches report (the service
records' mirrors, pods, Deployments/StatefulSets, Ingresses); `summarize` turns them into one
`ServiceSummary` per service with a status a user understands. Helm's own release Secrets are
not read (the platform may not read Secrets): a record says whether its install is over (its
recorded launch steps) and why it failed, and the reconciler marks a record failed when its
release is missing or was left pending.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from onyxia_py.quantities import quantity_or_none
from onyxia_py.services import objects
from onyxia_py.services.models import Phase, ServiceMeta

STARTING = "starting"
RUNNING = "running"
SUSPENDED = "suspended"
FAILED = "failed"
DELETING = "deleting"

GPU = "nvidia.com/gpu"
# Recorded launch steps that say the install is not over yet.
INSTALL_PHASES = (Phase.ACCEPTED, Phase.INSTALLING)
# Container waiting reasons that waiting will not cure.
BROKEN = {
    "CrashLoopBackOff": "keeps crashing",
    "ImagePullBackOff": "cannot pull its image",
    "ErrImagePull": "cannot pull its image",
    "InvalidImageName": "has an invalid image name",
    "CreateContainerConfigError": "has a configuration error",
    "CreateContainerError": "cannot be created",
}


HTTPS_URL = "https://{host}"


@dataclass(frozen=True)
class Waiting:
    """A container that waits, and why (what a launch's progress reads)."""

    container: str
    reason: str
    message: str | None
    image: str


@dataclass(frozen=True)
class PodBrief:
    """What the listing and a launch's progress need of a pod."""

    name: str
    release: str
    ready: bool
    terminating: bool
    started: str | None
    broken: tuple[str, ...]  # "container jupyter keeps crashing"
    unschedulable: str | None  # the scheduler's message ("" when it gave none)
    scheduled: bool
    waiting: tuple[Waiting, ...]
    cpu: Decimal
    memory: Decimal
    gpus: Decimal
    # Each container's name and readiness, in the pod's order, and the pod's phase.
    containers: tuple[tuple[str, bool], ...] = ()
    phase: str = "Unknown"
    restarts: tuple[int, ...] = ()  # each container's restart count, in the same order


@dataclass(frozen=True)
class ControllerBrief:
    """What the listing needs of a Deployment or StatefulSet."""

    release: str
    replicas: int
    ready: int


@dataclass(frozen=True)
class IngressBrief:
    """The URLs an Ingress gives its service."""

    release: str
    urls: tuple[str, ...]


@dataclass(frozen=True)
class ServiceSummary:
    """One line of a service listing."""

    meta: ServiceMeta
    status: str
    reason: str | None
    urls: tuple[str, ...]
    started: str | None
    requests: dict[str, str]
    gpus: int


@dataclass
class ProjectObjects:
    """The objects of one project namespace, as compact briefs keyed by name."""

    namespace: str
    metas: dict[str, ServiceMeta] = field(default_factory=dict)
    meta_deleting: set[str] = field(default_factory=set)
    pods: dict[str, PodBrief] = field(default_factory=dict)
    controllers: dict[str, ControllerBrief] = field(default_factory=dict)
    ingresses: dict[str, IngressBrief] = field(default_factory=dict)


def _instance(obj: dict[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return str(labels.get(objects.INSTANCE_LABEL, ""))


def _sum(containers: list[dict[str, Any]], name: str) -> Decimal:
    total = Decimal(0)
    for container in containers:
        value = ((container.get("resources") or {}).get("requests") or {}).get(name)
        total += quantity_or_none(value) or Decimal(0)
    return total


def pod_brief(pod: dict[str, Any]) -> PodBrief:
    """The parts of a pod the listing and a launch's progress use."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    unschedulable = next(
        (
            str(c.get("message") or "")
            for c in status.get("conditions") or []
            if c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == "Unschedulable"
        ),
        None,
    )
    scheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    waiting = tuple(
        Waiting(
            container=str(c.get("name")),
            reason=str(state["reason"]),
            message=None if state.get("message") is None else str(state["message"]),
            image=str(c.get("image", "the image")),
        )
        for c in status.get("containerStatuses") or []
        if (state := (c.get("state") or {}).get("waiting") or {}).get("reason")
    )
    broken = tuple(
        f"container {w.container} {BROKEN[w.reason]}" for w in waiting if w.reason in BROKEN
    )
    return PodBrief(
        name=str(metadata.get("name", "")),
        release=_instance(pod),
        ready=ready,
        terminating=bool(metadata.get("deletionTimestamp")),
        started=status.get("startTime"),
        broken=broken,
        unschedulable=unschedulable,
        scheduled=scheduled,
        waiting=waiting,
        cpu=_sum(containers, "cpu"),
        memory=_sum(containers, "memory"),
        gpus=_sum(containers, GPU),
        containers=tuple(
            (str(c.get("name", "")), bool(c.get("ready")))
            for c in status.get("containerStatuses") or []
        ),
        phase=str(status.get("phase") or "Unknown"),
        restarts=tuple(
            int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []
        ),
    )


def controller_brief(controller: dict[str, Any]) -> ControllerBrief:
    """Desired and ready replicas of a Deployment or StatefulSet."""
    spec = controller.get("spec") or {}
    status = controller.get("status") or {}
    replicas = spec.get("replicas")
    return ControllerBrief(
        release=_instance(controller),
        replicas=1 if replicas is None else int(replicas),
        ready=int(status.get("readyReplicas") or 0),
    )


def ingress_urls(ingress: dict[str, Any], url_template: str = HTTPS_URL) -> tuple[str, ...]:
    """The URLs of an Ingress's hosts, each made with `url_template` (`{host}` in it)."""
    rules = (ingress.get("spec") or {}).get("rules") or []
    return tuple(url_template.format(host=rule["host"]) for rule in rules if rule.get("host"))


def ingress_brief(ingress: dict[str, Any], url_template: str = HTTPS_URL) -> IngressBrief:
    """The URLs of an Ingress's hosts."""
    return IngressBrief(release=_instance(ingress), urls=ingress_urls(ingress, url_template))


def helm_revision(secret: dict[str, Any]) -> tuple[str, int, str] | None:
    """(release, revision, status) from the labels of one of Helm's release Secrets."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    name = labels.get("name")
    try:
        version = int(labels.get("version", ""))
    except ValueError:
        return None
    if not name:
        return None
    return str(name), version, str(labels.get("status", "unknown"))


def _cpu(amount: Decimal) -> str:
    millis = int(amount * 1000)
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def _memory(amount: Decimal) -> str:
    value = int(amount)
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def summarize(state: ProjectObjects, meta: ServiceMeta) -> ServiceSummary:
    """The listing line of `meta`'s service."""
    release = meta.release
    pods = [p for p in state.pods.values() if p.release == release]
    live = [p for p in pods if not p.terminating]
    controllers = [c for c in state.controllers.values() if c.release == release]
    status, reason = _status(state, meta, live, controllers)
    urls = tuple(u for i in state.ingresses.values() if i.release == release for u in i.urls)
    requests: dict[str, str] = {}
    cpu = sum((p.cpu for p in live), Decimal(0))
    memory = sum((p.memory for p in live), Decimal(0))
    gpus = sum((p.gpus for p in live), Decimal(0))
    if cpu:
        requests["cpu"] = _cpu(cpu)
    if memory:
        requests["memory"] = _memory(memory)
    if gpus:
        requests[GPU] = str(int(gpus))
    starts = sorted(p.started for p in live if p.started)
    return ServiceSummary(
        meta=meta,
        status=status,
        reason=reason,
        urls=urls,
        started=starts[0] if starts and status == RUNNING else None,
        requests=requests,
        gpus=int(gpus) if live else meta.gpus,
    )


def installing(meta: ServiceMeta) -> bool:
    """Whether the record says its install is not over (a launch's last step so far)."""
    return bool(meta.events) and meta.events[-1].phase in INSTALL_PHASES


def _status(
    state: ProjectObjects,
    meta: ServiceMeta,
    pods: list[PodBrief],
    controllers: list[ControllerBrief],
) -> tuple[str, str | None]:
    if meta.release in state.meta_deleting:
        return DELETING, None
    if meta.failure:
        return FAILED, meta.failure
    if installing(meta):
        return STARTING, "installing"
    broken = [b for p in pods for b in p.broken]
    if broken:
        return FAILED, "; ".join(broken)
    desired = sum(c.replicas for c in controllers)
    if not meta.running_since and desired == 0:
        return SUSPENDED, None
    if controllers and desired > 0 and all(c.ready >= c.replicas for c in controllers):
        return RUNNING, None
    if not controllers and pods and all(p.ready for p in pods):
        return RUNNING, None
    if not controllers and not pods:
        # A chart without workloads (a database user, a bucket) is up as soon as it is deployed.
        return RUNNING, None
    waiting = next((p.unschedulable for p in pods if p.unschedulable is not None), None)
    if waiting is not None:
        return STARTING, f"waiting for resources: {waiting or 'no node can run it'}"
    return STARTING, None


def visible_to(summaries: list[ServiceSummary], username: str) -> list[ServiceSummary]:
    """The lines a member sees: their own services, and the ones shared with the group."""
    return [s for s in summaries if s.meta.owner == username or s.meta.share]
