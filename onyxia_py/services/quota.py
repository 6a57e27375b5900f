"""Quota pre-flight: what a release will request, and whether the project has room for it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import yaml

from onyxia_py.errors import QuotaExceeded
from onyxia_py.quantities import human, parse_quantity

# Workload kinds and where their pod template lives.
_WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet", "Job", "DaemonSet"}


def manifests_objects(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every object of rendered manifests (NOTES and empty documents skipped)."""
    found = []
    for name, text in manifests.items():
        if not name.endswith((".yaml", ".yml", ".json")):
            continue
        for document in yaml.safe_load_all(text):
            if isinstance(document, dict) and "kind" in document:
                found.append(document)
    return found


def _pod_spec(obj: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec, 1
    if kind in _WORKLOADS:
        replicas = int(spec.get("replicas", 1) if kind != "Job" else spec.get("parallelism", 1))
        return (spec.get("template") or {}).get("spec") or {}, replicas
    return None


def requested(objects: Iterable[dict[str, Any]]) -> dict[str, Decimal]:
    """The quota keys a release consumes: requests/limits of running pods, storage, pod count."""
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
        found = _pod_spec(obj)
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


def total(amounts: Iterable[dict[str, Decimal]]) -> dict[str, Decimal]:
    """The sum of several requests, key by key."""
    summed: dict[str, Decimal] = {}
    for amount in amounts:
        for key, value in amount.items():
            summed[key] = summed.get(key, Decimal(0)) + value
    return summed
