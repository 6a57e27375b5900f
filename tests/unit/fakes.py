"""Fakes behind the domain's ports, shared by the unit tests: an in-memory Kubernetes (`Kube`),
Helm (`HelmEngine`) and audit log (`Audit`). Each keeps the rules the domain relies on (not found,
conflicts on a stale resourceVersion, label selectors, Helm's release Secrets, one Helm action
per release) and nothing more; the integration tests exercise the real systems."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from onyxia_py.errors import Conflict, NotFound, OnyxiaError, OperationFailed, Unavailable
from onyxia_py.helm import Cancellation, ProcessLocks, ReleaseInfo
from onyxia_py.helm.engine import Values
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeObject
from onyxia_py.kube.watch import Change, Listener, WatchSpec

INSTANCE_LABEL = "app.kubernetes.io/instance"  # what Helm charts label their objects with

Key = tuple[str, str, str]  # kind, namespace ("" for cluster-wide kinds), name


def matches(labels: dict[str, str], selector: str | None) -> bool:
    """Whether `labels` satisfy a label selector of `k=v`, `k!=v` and `k` terms."""
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: KubeObject, path: str) -> Any:
    found: Any = obj
    for part in path.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """An RFC 7386 merge patch, in place (None removes a key)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class FakeFollower:
    """A watch on the fake cluster: its snapshot at `start`, then every write (a `Follower`)."""

    def __init__(
        self, kube: FakeKube, spec: WatchSpec, listener: Listener, as_: Impersonation | None
    ) -> None:
        self.kube = kube
        self.spec = spec
        self.listener = listener
        self.as_ = as_

    def wants(self, obj: KubeObject) -> bool:
        metadata = obj.get("metadata") or {}
        return (
            obj.get("kind") == self.spec.kind
            and self.spec.namespace in ("", metadata.get("namespace"))
            and matches(metadata.get("labels") or {}, self.spec.label_selector)
        )

    def start(self) -> None:
        self.kube.followers.append(self)
        found = tuple(copy.deepcopy(o) for o in self.kube.objects.values() if self.wants(o))
        self.listener(Change(self.spec.kind, self.spec.namespace, "sync", found))

    def stop(self) -> None:
        if self in self.kube.followers:
            self.kube.followers.remove(self)


@dataclass
class FakeKube:
    """An in-memory API server: objects by kind, namespace and name (a `Kube`)."""

    objects: dict[Key, KubeObject] = field(default_factory=dict)
    followers: list[FakeFollower] = field(default_factory=list)
    # Errors the next matching calls raise: (method, kind, name prefix, error).
    failures: list[tuple[str, str, str, OnyxiaError]] = field(default_factory=list)
    # Every call: (method, kind, namespace, name, who), the platform itself being None
    # (wait_allowed: the resource, namespace and user waited for).
    calls: list[tuple[str, str, str, str, Impersonation | None]] = field(default_factory=list)
    # Whether fresh RoleBindings reach the authorizer (else wait_allowed gives up).
    authorizes: bool = True
    _version: int = 0

    def fail(
        self, method: str, kind: str, error: OnyxiaError, *, times: int = 1, name_prefix: str = ""
    ) -> None:
        """Make the next `times` calls of `method` on `kind` (named `name_prefix`...) raise."""
        self.failures.extend([(method, kind, name_prefix, error)] * times)

    def follower(
        self, spec: WatchSpec, listener: Listener, as_: Impersonation | None
    ) -> FakeFollower:
        """A `FollowerFactory` for the `ServiceCache`: watches of this fake cluster."""
        return FakeFollower(self, spec, listener, as_)

    def put(self, obj: KubeObject) -> KubeObject:
        """Store `obj` as it is (a test's fixture, Helm's own writes), versioned and watched."""
        metadata = obj["metadata"]
        known = self.find(obj["kind"], metadata["name"], metadata.get("namespace"))
        stored = copy.deepcopy(obj)
        if known is not None:  # the same object, changed: it was created when it was
            stored["metadata"].setdefault(
                "creationTimestamp", known["metadata"]["creationTimestamp"]
            )
        return self._store(stored, "added" if known is None else "modified")

    def find(self, kind: str, name: str, namespace: str | None = None) -> KubeObject | None:
        """The stored object, or None (for assertions: no call recorded)."""
        return self.objects.get((kind, namespace or "", name))

    def names(self, kind: str, namespace: str | None = None) -> set[str]:
        """The names of the stored objects of `kind` (in `namespace`)."""
        return {
            name
            for (k, ns, name) in self.objects
            if k == kind and (namespace is None or ns == namespace)
        }

    # -- the `Kube` Protocol ---------------------------------------------------------------------

    async def get(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """One object; NotFound if it does not exist."""
        self._call("get", kind, namespace, name, as_)
        found = self.find(kind, name, namespace)
        if found is None:
            raise NotFound(f'{kind.lower()}s "{name}" not found')
        return copy.deepcopy(found)

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        as_: Impersonation | None = None,
    ) -> list[KubeObject]:
        """The objects of `kind` (in `namespace`, or cluster-wide), optionally filtered."""
        self._call("list", kind, namespace, "", as_)
        fields = [t.split("=", 1) for t in filter(None, (field_selector or "").split(","))]
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items())
            if k == kind
            and (namespace is None or ns == namespace)
            and matches((obj.get("metadata") or {}).get("labels") or {}, label_selector)
            and all(str(_field(obj, path)) == value for path, value in fields)
        ]

    async def create(self, manifest: KubeObject, *, as_: Impersonation | None = None) -> KubeObject:
        """Create `manifest`; Conflict if it exists."""
        metadata = manifest.get("metadata") or {}
        kind, name, namespace = manifest["kind"], metadata["name"], metadata.get("namespace")
        self._call("create", kind, namespace, name, as_)
        if self.find(kind, name, namespace) is not None:
            raise Conflict(f'{kind.lower()}s "{name}" already exists')
        return self._store(copy.deepcopy(manifest), "added")

    async def patch(
        self,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """Merge-patch one object; Conflict when the patch's resourceVersion is stale."""
        self._call("patch", kind, namespace, name, as_)
        if patch_type != "merge":
            raise NotImplementedError(f"the fake cluster only merge-patches, not {patch_type}")
        found = self.find(kind, name, namespace)
        if found is None:
            raise NotFound(f'{kind.lower()}s "{name}" not found')
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        if expected is not None and expected != found["metadata"]["resourceVersion"]:
            raise Conflict(f"the object has been modified; {name} is not at {expected}")
        changed = copy.deepcopy(found)
        _merge(changed, patch)
        return self._store(changed, "modified")

    async def apply(
        self,
        manifest: KubeObject,
        *,
        field_manager: str = "onyxia-py",
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """Create `manifest`, or merge its fields into the existing object (ours win)."""
        metadata = manifest["metadata"]
        kind, name, namespace = manifest["kind"], metadata["name"], metadata.get("namespace")
        self._call("apply", kind, namespace, name, as_)
        found = self.find(kind, name, namespace)
        if found is None:
            return self._store(copy.deepcopy(manifest), "added")
        changed = copy.deepcopy(found)
        _merge(changed, {k: v for k, v in manifest.items() if v is not None})
        return self._store(changed, "modified")

    async def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete one object; NotFound unless `missing_ok`."""
        self._call("delete", kind, namespace, name, as_)
        gone = self.objects.pop((kind, namespace or "", name), None)
        if gone is None:
            if not missing_ok:
                raise NotFound(f'{kind.lower()}s "{name}" not found')
            return
        self._notify(gone, "deleted")

    async def wait_allowed(
        self,
        who: Impersonation,
        verb: str,
        resource_name: str,
        namespace: str,
        *,
        limit_seconds: float = 10.0,
    ) -> None:
        """Return when `authorizes`, else fail as the real wait does past its limit."""
        self._call("wait_allowed", resource_name, namespace, who.user, None)
        if not self.authorizes:
            raise Unavailable(f"{who.user} still may not {verb} {resource_name} in {namespace}")

    # -- inside --------------------------------------------------------------------------------

    def _call(
        self, method: str, kind: str, namespace: str | None, name: str, as_: Impersonation | None
    ) -> None:
        self.calls.append((method, kind, namespace or "", name, as_))
        for index, (m, k, prefix, error) in enumerate(self.failures):
            if (m, k) == (method, kind) and name.startswith(prefix):
                del self.failures[index]
                raise error

    def _store(self, obj: KubeObject, change: str) -> KubeObject:
        metadata = obj.setdefault("metadata", {})
        self._version += 1
        metadata["resourceVersion"] = str(self._version)
        metadata.setdefault("creationTimestamp", datetime.now(UTC).isoformat(timespec="seconds"))
        self.objects[(obj["kind"], metadata.get("namespace") or "", metadata["name"])] = obj
        self._notify(obj, change)
        return copy.deepcopy(obj)

    def _notify(self, obj: KubeObject, change: str) -> None:
        for follower in list(self.followers):
            if follower.wants(obj):
                metadata = obj["metadata"]
                follower.listener(
                    Change(obj["kind"], metadata["namespace"], change, (copy.deepcopy(obj),))
                )


def helm_secret(release: str, namespace: str, revision: int, status: str) -> KubeObject:
    """One of Helm's release Secrets, as its labels describe it."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision}",
            "namespace": namespace,
            "labels": {
                "owner": "helm",
                "name": release,
                "version": str(revision),
                "status": status,
            },
        },
    }


@dataclass
class _Release:
    info: ReleaseInfo
    values: Values


class FakeHelm:
    """Releases in memory, each revision also kept as Helm keeps it: a Secret in the fake
    cluster (a `HelmEngine`). What `install` does is set per release: succeed, fail or hang
    until its cancellation."""

    def __init__(self, kube: FakeKube, *, chart: str = "hello", version: str = "0.1.0") -> None:
        self.kube = kube
        self.chart = chart
        self.version = version
        self.locks = ProcessLocks()
        self.releases: dict[tuple[str, str], _Release] = {}
        # "succeed", "fail: <message>" or "hang" (until cancelled), the default for any release.
        self.install_outcome = "succeed"
        self.upgrade_errors: list[OnyxiaError] = []
        self.uninstall_errors: list[OnyxiaError] = []
        self.manifests: dict[str, str] = {}
        self.started = asyncio.Event()  # set when an install begins
        self.actions: list[tuple[str, str, Impersonation | None]] = []

    async def render(
        self, chart: Path, values: Values, *, release: str, namespace: str
    ) -> dict[str, str]:
        """The manifests set on the fake (`manifests`), whatever the chart."""
        return dict(self.manifests)

    async def install(
        self,
        chart: Path,
        *,
        release: str,
        namespace: str,
        values: Values,
        as_: Impersonation | None = None,
        wait: bool = True,
        timeout_seconds: int | None = None,
        description: str | None = None,
        dry_run: bool = False,
        cancellation: Cancellation | None = None,
    ) -> ReleaseInfo:
        """Install as `install_outcome` says; a hanging install ends when cancelled."""
        self.actions.append(("install", release, as_))
        async with self.locks.hold(namespace, release, "install", cancellation):
            if (namespace, release) in self.releases:
                raise Conflict(f"installing {release}: cannot re-use a name that is still in use")
            self._write(namespace, release, values, 1, "pending-install")
            self.started.set()
            what = f"installing {release} in {namespace}"
            if self.install_outcome == "hang":
                stopped = asyncio.Event()
                if cancellation is None:
                    raise AssertionError("a hanging install needs a cancellation to end")
                cancellation.on_cancel(stopped.set)
                await stopped.wait()
                self._write(namespace, release, values, 1, "failed")
                raise OperationFailed(f"{what}: cancelled")
            if self.install_outcome.startswith("fail"):
                self._write(namespace, release, values, 1, "failed")
                raise OperationFailed(f"{what}: {self.install_outcome.partition(': ')[2]}")
            return self._write(namespace, release, values, 1, "deployed")

    async def upgrade(
        self,
        chart: Path,
        *,
        release: str,
        namespace: str,
        values: Values,
        as_: Impersonation | None = None,
        wait: bool = True,
        timeout_seconds: int | None = None,
    ) -> ReleaseInfo:
        """A new deployed revision with `values` (or raise the next of `upgrade_errors`)."""
        self.actions.append(("upgrade", release, as_))
        async with self.locks.hold(namespace, release, "upgrade"):
            if self.upgrade_errors:
                raise self.upgrade_errors.pop(0)
            current = self._release(namespace, release, f"upgrading {release}")
            return self._write(namespace, release, values, current.info.revision + 1, "deployed")

    async def uninstall(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Remove the release and what it made (or raise the next of `uninstall_errors`)."""
        self.actions.append(("uninstall", release, as_))
        async with self.locks.hold(namespace, release, "uninstall"):
            if self.uninstall_errors:
                raise self.uninstall_errors.pop(0)
            if self.releases.pop((namespace, release), None) is None and not missing_ok:
                raise NotFound(f"uninstalling {release}: release: not found")
            # Its revisions, and the objects it made (volumes claimed by StatefulSets stay).
            for (kind, ns, name), obj in list(self.kube.objects.items()):
                labels = obj["metadata"].get("labels") or {}
                revision = kind == "Secret" and name.startswith(f"sh.helm.release.v1.{release}.v")
                made = labels.get(INSTANCE_LABEL) == release and kind != "PersistentVolumeClaim"
                if ns == namespace and (revision or made):
                    await self.kube.delete(kind, name, namespace, as_=as_, missing_ok=True)

    async def list(self, namespace: str, *, as_: Impersonation | None = None) -> list[ReleaseInfo]:
        """Every release of `namespace`."""
        return [r.info for (ns, _), r in sorted(self.releases.items()) if ns == namespace]

    async def status(
        self, release: str, *, namespace: str, as_: Impersonation | None = None
    ) -> ReleaseInfo:
        """The release's latest revision."""
        return self._release(namespace, release, f"status of {release}").info

    async def get_values(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        all_values: bool = False,
    ) -> Values:
        """The values of the latest revision."""
        return copy.deepcopy(self._release(namespace, release, f"values of {release}").values)

    def put_release(self, namespace: str, release: str, status: str, *, created: str) -> None:
        """A release left by an earlier install (revision 1 in `status`, written at `created`)."""
        self._write(namespace, release, {}, 1, status, created)

    def _release(self, namespace: str, release: str, what: str) -> _Release:
        found = self.releases.get((namespace, release))
        if found is None:
            raise NotFound(f"{what}: release: not found")
        return found

    def _write(
        self,
        namespace: str,
        release: str,
        values: Values,
        revision: int,
        status: str,
        created: str = "",
    ) -> ReleaseInfo:
        info = ReleaseInfo(
            name=release,
            namespace=namespace,
            revision=revision,
            status=status,
            chart=self.chart,
            chart_version=self.version,
            app_version="1",
            updated=datetime.now(UTC).isoformat(),
            notes=f"{release} is {status}",
        )
        self.releases[(namespace, release)] = _Release(info, copy.deepcopy(values))
        secret = helm_secret(release, namespace, revision, status)
        if created:
            secret["metadata"]["creationTimestamp"] = created
        self.kube.put(secret)
        return info


@dataclass(frozen=True)
class AuditRow:
    """One recorded audit row."""

    actor: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]


@dataclass
class RecordingAudit:
    """An audit log that keeps its rows in a list (an `Audit`); `failing` makes it refuse."""

    rows: list[AuditRow] = field(default_factory=list)
    failing: OnyxiaError | None = None

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Keep the row, or raise `failing` (a database that is away)."""
        if self.failing is not None:
            raise self.failing
        row = AuditRow(actor, action, target, outcome, dict(details or {}))
        self.rows.append(row)

    def actions(self) -> list[tuple[str, str, str]]:
        """(action, target, outcome) of every row, in order."""
        return [(r.action, r.target, r.outcome) for r in self.rows]
