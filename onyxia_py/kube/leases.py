"""Leases (coordination.k8s.io/v1), the record behind leader election.

Read and written as the platform's own identity. Every update names the resourceVersion it read,
so when two replicas race for an expired Lease the API server lets exactly one of them win and
answers the other 409 (Conflict).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onyxia_py.errors import NotFound
from onyxia_py.kube.api import KubeObject
from onyxia_py.kube.client import KubeClient
from onyxia_py.kube.resources import resource

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds a Lease and since when, as the API server stored it."""

    holder: str  # "" once released
    duration_seconds: int
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    transitions: int = 0
    # The version this record was read at; an update must name it.
    resource_version: str = ""
    # What the holder does with it (release locks: which release, which operation, requests).
    annotations: dict[str, str] = field(default_factory=dict)


def pod_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str | None:
    """The namespace this process runs in, from its service account; None outside a pod."""
    try:
        namespace = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return namespace or None


class KubeLeases:
    """The Leases of one namespace, as the platform."""

    def __init__(self, kube: KubeClient, namespace: str, *, timeout_seconds: float) -> None:
        self._kube = kube
        self.namespace = namespace
        self._timeout = timeout_seconds

    def _path(self, name: str | None = None) -> str:
        return resource("Lease").path(self.namespace, name)

    async def get(self, name: str) -> LeaseRecord | None:
        """The Lease called `name`, or None if there is none."""
        try:
            found = await self._kube.request("GET", self._path(name), timeout=self._timeout)
        except NotFound:
            return None
        return _record(found)

    async def create(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """Create the Lease; Conflict if it exists (another replica made it first)."""
        made = await self._kube.request(
            "POST", self._path(), body=self._manifest(name, record), timeout=self._timeout
        )
        return _record(made)

    async def update(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """Replace the Lease if it is still at `record.resource_version`; Conflict if anyone
        wrote it since."""
        written = await self._kube.request(
            "PUT", self._path(name), body=self._manifest(name, record), timeout=self._timeout
        )
        return _record(written)

    async def delete(self, name: str, resource_version: str = "") -> None:
        """Delete the Lease (only if still at `resource_version`, when given); gone already
        is fine, Conflict if anyone wrote it since."""
        body: KubeObject | None = None
        if resource_version:
            body = {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": resource_version},
            }
        try:
            await self._kube.request("DELETE", self._path(name), body=body, timeout=self._timeout)
        except NotFound:
            return

    def _manifest(self, name: str, record: LeaseRecord) -> KubeObject:
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if record.resource_version:
            metadata["resourceVersion"] = record.resource_version
        if record.annotations:
            metadata["annotations"] = dict(record.annotations)
        spec: dict[str, Any] = {
            "leaseDurationSeconds": record.duration_seconds,
            "leaseTransitions": record.transitions,
        }
        if record.holder:
            spec["holderIdentity"] = record.holder
        if record.acquired_at is not None:
            spec["acquireTime"] = _micro_time(record.acquired_at)
        if record.renewed_at is not None:
            spec["renewTime"] = _micro_time(record.renewed_at)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }


def _record(lease: KubeObject) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquired_at=_parse_time(spec.get("acquireTime")),
        renewed_at=_parse_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(lease.get("metadata", {}).get("resourceVersion", "")),
        annotations={
            str(k): str(v) for k, v in (lease.get("metadata", {}).get("annotations") or {}).items()
        },
    )


def _micro_time(moment: datetime) -> str:
    # MicroTime: RFC 3339 with exactly six fractional digits.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
