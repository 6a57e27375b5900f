"""What a stop drops or keeps: the services and projects a cluster holds, the warning a dropping
stop gives, and the record (``<state-dir>/kept.json``) that makes the next start resume on the
kept data (etcd, the real nodes' volumes, the local S3 server's data)."""

from __future__ import annotations

import datetime
import json
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

KEPT_FILE = "kept.json"
# The local S3 server's data dir (devtools/localstack.py) and the flag a clean, kept stop leaves
# in a lasting data dir (devtools/localrgw.py): a dropping stop deletes it, a fresh start too.
STACK_DATA = Path("localstack") / "rgw"
KEPT_FLAG = "kept"
STACK_STATE = Path("localstack") / "state.json"  # there while the local S3 server runs
# What onyxia-py writes (onyxia_py/services/objects.py, onyxia_py/projects/objects.py): one
# metadata Secret per service, and its project namespaces labelled as managed by it.
SERVICE_RECORD_TYPE = "onyxia.sh/release.v1"
SERVICE_RECORD_PREFIX = "sh.onyxia.release.v1."
HELM_RELEASE_TYPE = "helm.sh/release.v1"
PROJECT_SELECTOR = "app.kubernetes.io/managed-by=onyxia-py"
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}

JSON = Mapping[str, Any]


@dataclass(frozen=True)
class Inventory:
    """How many services (Helm releases or onyxia-py service records) and projects a cluster
    holds."""

    services: int
    projects: int

    def __str__(self) -> str:
        return f"{_plural(self.services, 'service')} in {_plural(self.projects, 'project')}"


@dataclass(frozen=True)
class Kept:
    """The record of a stop that kept the data: when, and what was in the cluster then."""

    at: str
    inventory: Inventory | None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def count(secrets: Iterable[JSON], namespaces: Iterable[JSON]) -> Inventory:
    """Count services (one per release, whatever its revisions) and projects (the managed
    namespaces, and any namespace holding a service) from listed Secrets and Namespaces."""
    services: set[tuple[str, str]] = set()
    for secret in secrets:
        meta = secret.get("metadata") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        if secret.get("type") == SERVICE_RECORD_TYPE:
            services.add((ns, name.removeprefix(SERVICE_RECORD_PREFIX)))
        elif secret.get("type") == HELM_RELEASE_TYPE:
            release = (meta.get("labels") or {}).get("name")
            if release:
                services.add((ns, str(release)))
    projects = {str((n.get("metadata") or {}).get("name", "")) for n in namespaces}
    projects |= {ns for ns, _ in services}
    projects.discard("")
    return Inventory(len(services), len(projects))


def read_inventory(client: httpx.Client) -> Inventory:
    """Count what the cluster behind `client` holds (raises httpx errors when it cannot)."""
    secrets: list[JSON] = []
    for kind in (SERVICE_RECORD_TYPE, HELM_RELEASE_TYPE):
        r = client.get("/api/v1/secrets", params={"fieldSelector": f"type={kind}"})
        r.raise_for_status()
        secrets += r.json().get("items") or []
    r = client.get("/api/v1/namespaces", params={"labelSelector": PROJECT_SELECTOR})
    r.raise_for_status()
    return count(secrets, r.json().get("items") or [])


def drop_warning(inventory: Inventory | None, *, stack: bool) -> str:
    """What a stop without keep says before it drops the state."""
    what = "the cluster's state" if inventory is None else f"the cluster's state: {inventory}"
    extra = ", their volumes" if inventory is None or inventory.services else ""
    s3 = " and the local S3 server's buckets" if stack else ""
    return f"dropping {what}{extra}{s3}. Keep them with: make dev-cluster-stop KEEP=1"


def keep_notice(inventory: Inventory | None, *, stack: bool) -> str:
    """What a stop with keep says."""
    held = "" if inventory is None else f" ({inventory})"
    s3 = " and the local S3 server's data" if stack else ""
    return (
        f"keeping the cluster's state{held}, its volumes{s3}: the next `make dev-cluster` or"
        " `make run` resumes on them; `make dev-cluster-stop` drops them"
    )


def resume_message(kept: Kept) -> str:
    """What a start that resumes on kept data says."""
    held = "" if kept.inventory is None else f": {kept.inventory}"
    return (
        f"resuming the kept state of {kept.at}{held} (drop it with `make dev-cluster-stop`"
        " while the cluster is stopped)"
    )


def write_kept(state_dir: Path, inventory: Inventory | None, now: datetime.datetime) -> Kept:
    """Record that a stop kept the data (the counts as they were)."""
    at = now.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc: dict[str, Any] = {"at": at}
    if inventory is not None:
        doc |= {"services": inventory.services, "projects": inventory.projects}
    (state_dir / KEPT_FILE).write_text(json.dumps(doc) + "\n")
    return Kept(at, inventory)


def read_kept(state_dir: Path) -> Kept | None:
    """The record of a kept stop, or None when the last stop dropped the state."""
    try:
        doc = json.loads((state_dir / KEPT_FILE).read_text())
        at = str(doc["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        inventory: Inventory | None = Inventory(int(doc["services"]), int(doc["projects"]))
    except (KeyError, TypeError, ValueError):
        inventory = None
    return Kept(at, inventory)


def forget_kept(state_dir: Path) -> None:
    """Drop the record of a kept stop, so that nothing resumes on it."""
    (state_dir / KEPT_FILE).unlink(missing_ok=True)


def needs_confirmation(
    inventory: Inventory | None, *, stack: bool, interactive: bool, yes: bool
) -> bool:
    """Whether a dropping stop asks first: only at a terminal (scripts and CI never hang), only
    when something would be lost (or it cannot tell), and never with yes (YES=1)."""
    if yes or not interactive:
        return False
    empty = inventory is not None and not inventory.services and not inventory.projects
    return stack or not empty


def drop_stack_data(state_dir: Path) -> None:
    """Delete the local S3 server's kept data (only when kept: a running server owns its dir)."""
    data = state_dir / STACK_DATA
    if (data / KEPT_FLAG).exists():
        shutil.rmtree(data, ignore_errors=True)


def mark_nodes_unknown(client: httpx.Client) -> list[str]:
    """Set every Node's Ready condition to Unknown, as the node lifecycle controller (which the
    local cluster does not run) would: a kept Node says Ready from its last heartbeat before the
    stop, and a start must wait for its kubelet, not trust that. Return the nodes marked."""
    r = client.get("/api/v1/nodes")
    r.raise_for_status()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "kept state resumed: waiting for the node to report",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
    }
    body = json.dumps({"status": {"conditions": [condition]}})
    marked = []
    for node in r.json().get("items") or []:
        name = str(node["metadata"]["name"])
        done = client.patch(f"/api/v1/nodes/{name}/status", content=body, headers=STRATEGIC)
        if done.status_code == 200:
            marked.append(name)
    return marked
