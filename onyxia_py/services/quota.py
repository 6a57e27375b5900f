"""Quota pre-flight: what a release will request, and whether the project has room for it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import yaml

from onyxia_py.errors import Invalid, QuotaExceeded
from onyxia_py.quantities import human, parse_quantity

# Workload kinds and where their pod template lives.
# libyaml's loader when PyYAML has it: rendered manifests are parsed at every launch.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet", "Job", "DaemonSet"}


# Hooks Helm runs during an install; the others (tests, upgrades, deletions, rollbacks) are
# not created by it, so they take no quota then.
_INSTALL_HOOKS = {"pre-install", "post-install"}


def manifests_objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every object an install of these rendered manifests creates (NOTES, empty documents and
    hooks that do not run at install skipped); Invalid, naming the template and line, when a
    template rendered YAML that does not parse."""
    found = []
    for name, text in manifests.items():
        if not name.endswith((".yaml", ".yml", ".json")):
            continue
        try:
            documents = list(yaml.load_all(text, Loader=_YAML_LOADER))
        except yaml.YAMLError as exc:
            raise Invalid(f"the chart renders invalid YAML: {_yaml_problem(name, exc)}") from None
        for document in documents:
            if isinstance(document, dict) and "kind" in document and _installed(document):
                found.append(document)
    return found


def _installed(obj: dict[str, Any]) -> bool:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    hooks = annotations.get("helm.sh/hook")
    if not isinstance(hooks, str):
        return True
    return any(h.strip() in _INSTALL_HOOKS for h in hooks.split(","))


def _yaml_problem(template: str, exc: yaml.YAMLError) -> str:
    """`template` line N: the problem, as Helm says it."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{template} line {mark.line + 1}" if mark is not None else template
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: {problem}"


def pod_spec(obj: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """The pod template of a workload (or a Pod) and how many pods it runs; None otherwise."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec, 1
    if kind in _WORKLOADS:
        replicas = int(spec.get("replicas", 1) if kind != "Job" else spec.get("parallelism", 1))
        return (spec.get("template") or {}).get("spec") or {}, replicas
    return None


def requested(objects: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """The quota keys a release consumes: requests/limits of running pods, storage, pod count.
    Invalid when a rendered object has a shape Kubernetes would refuse."""
    try:
        return _requested(objects)
    except (AttributeError, TypeError, ValueError) as exc:  # rendered from untrusted templates
        raise Invalid(f"the chart renders an object Kubernetes would refuse ({exc})") from None


def _requested(objects: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}

    def add(key: str, amount: Decimal) -> None:
        total[key] = total.get(key, Decimal(0)) + amount

    for obj in objects:
        if obj.get("kind") == "PersistentVolumeClaim":
            storage = (
                (obj.get("spec") or {}).get("resources", {}).get("requests", {}).get("storage")
            )
            if storage:
                add("requests.storage", parse_quantity(storage))
            continue
        found = pod_spec(obj)
        if found is None:
            continue
        pod, replicas = found
        if replicas <= 0:
            continue
        add("count/pods", Decimal(replicas))
        for container in pod.get("containers") or []:
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                for name, value in (resources.get(section) or {}).items():
                    amount = parse_quantity(value) * replicas
                    add(f"{section}.{name}", amount)
                    if section == "requests" and name in ("cpu", "memory"):
                        add(name, amount)  # a quota may use the bare key for requests
                    if section == "limits" and name.startswith("nvidia.com/"):
                        add(f"requests.{name}", amount)  # extended resources: limits = requests
    return total


def preflight(
    quota: dict[str, Any] | None,
    wanted: dict[str, Decimal],
    namespace: str,
    reserved: dict[str, Decimal] | None = None,
) -> None:
    """Refuse a request that does not fit the quota's free share, saying by how much.
    `reserved`: what launches accepted a moment ago will take, not yet in the quota's usage."""
    if not quota:
        return
    hard = (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}
    used = (quota.get("status") or {}).get("used") or {}
    refusals = []
    for key, limit in hard.items():
        need = wanted.get(key)
        if need is None or need == 0:
            continue
        taken = parse_quantity(used.get(key, "0")) + (reserved or {}).get(key, Decimal(0))
        free = parse_quantity(limit) - taken
        if need > free:
            available = human(key, max(free, Decimal(0)))
            text = f"requested {human(key, need)}, {available} available in {namespace} ({key})"
            refusals.append((key, text))
    if refusals:
        raise QuotaExceeded(
            "; ".join(text for _, text in refusals),
            resources={key: text for key, text in refusals},
        )


def free_share(
    quota: dict[str, Any] | None, reserved: dict[str, Decimal] | None = None
) -> dict[str, Decimal]:
    """What the quota has left, key by key (never below zero), less `reserved`."""
    if not quota:
        return {}
    hard = (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}
    used = (quota.get("status") or {}).get("used") or {}
    left = {}
    for key, limit in hard.items():
        taken = parse_quantity(used.get(key, "0")) + (reserved or {}).get(key, Decimal(0))
        left[key] = max(parse_quantity(limit) - taken, Decimal(0))
    return left


def total(amounts: Iterable[dict[str, Decimal]]) -> dict[str, Decimal]:
    """The sum of several requests, key by key."""
    summed: dict[str, Decimal] = {}
    for amount in amounts:
        for key, value in amount.items():
            summed[key] = summed.get(key, Decimal(0)) + value
    return summed
