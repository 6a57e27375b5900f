"""The services domain put together on the fakes: the real Launcher, Services, bootstrap, watch
cache and catalogues (a folder of test charts), with Kubernetes, Helm and the audit log faked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.launch import LaunchContext
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeObject
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.core import personal_project
from onyxia_py.projects.models import Project
from onyxia_py.services import objects
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.launcher import Launcher, LaunchSpec
from onyxia_py.services.lifecycle import Services
from onyxia_py.services.models import LaunchEvent, ServiceMeta
from onyxia_py.services.tracker import LaunchTracker
from onyxia_py.settings import CatalogSettings, ProjectSettings, RegionSettings
from onyxia_py.storage import objects as storage_objects
from onyxia_py.storage.models import PreparedS3

from ..fakes import FakeHelm, FakeKube, RecordingAudit

CHARTS = Path(__file__).parents[2] / "fixtures" / "charts"
PROJECTS = ProjectSettings(user_quota={"requests.cpu": "1", "count/pods": "5"})


def deployment(cpu: str = "1") -> str:
    """A rendered Deployment of one pod requesting `cpu`."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: hello}}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: hello
          image: busybox
          resources: {{requests: {{cpu: "{cpu}"}}}}
"""


def principal(username: str = "alice", groups: tuple[str, ...] = ()) -> Principal:
    """A caller allowed to launch."""
    identity = Identity("https://sso", f"sub-{username}", username, None, groups, ())
    return Principal(1, identity, False, frozenset({Scope.READ, Scope.LAUNCH}), AuthMethod.BEARER)


class FakeStorage:
    """`LaunchStorage` that keeps an `onyxia-s3-<release>` Secret in the fake cluster."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    async def prepare(self, principal: Principal, project: Project, release: str) -> PreparedS3:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": storage_objects.secret_name(release),
                "namespace": project.namespace,
            },
            "stringData": {"AWS_ACCESS_KEY_ID": "key"},
        }
        return PreparedS3(None, secret)

    async def store(self, prepared: PreparedS3, as_user: Impersonation) -> None:
        assert prepared.secret is not None
        await self.kube.create(prepared.secret, as_=as_user)

    async def discard(self, namespace: str, release: str, as_user: Impersonation) -> None:
        await self.kube.delete(
            "Secret", storage_objects.secret_name(release), namespace, as_=as_user, missing_ok=True
        )


@dataclass
class Platform:
    """One platform's domain objects over shared fakes."""

    tmp: Path
    kube: FakeKube = field(default_factory=FakeKube)
    audit: RecordingAudit = field(default_factory=RecordingAudit)  # rows before a change
    outbox: RecordingAudit = field(default_factory=RecordingAudit)  # rows of changes made
    tracker: LaunchTracker = field(default_factory=LaunchTracker)

    def __post_init__(self) -> None:
        self.helm = FakeHelm(self.kube)
        self.helm.manifests = {"hello/templates/deployment.yaml": deployment()}
        self.bootstrap = ProjectBootstrap(self.kube, PROJECTS)
        self.cache = ServiceCache(
            self.kube, follower_factory=self.kube.follower, sync_timeout_seconds=1.0
        )
        settings = CatalogSettings(paths=[], cache_dir=self.tmp / "cache")
        spec = CatalogSpec(id="ide", name="IDE", location=str(CHARTS))
        self.catalogs = Catalogs(settings, [spec], base_dir=self.tmp)
        context = LaunchContext(
            self.catalogs,
            SchemaRegistry(bundled_schema_dir(), None),
            RegionSettings(),
            settings,
            b"project-secret" * 3,
        )
        self.storage = FakeStorage(self.kube)
        self.launcher = Launcher(
            kube=self.kube,
            helm=self.helm,
            bootstrap=self.bootstrap,
            launch_context=context,
            audit=self.audit,
            outbox=self.outbox,
            tracker=self.tracker,
            cache=self.cache,
            timeout_seconds=5,
            cleanup_seconds=4.0,
            s3=self.storage,
        )
        self.services = Services(
            kube=self.kube,
            helm=self.helm,
            bootstrap=self.bootstrap,
            catalogs=self.catalogs,
            audit=self.outbox,
            cache=self.cache,
        )

    async def start(self) -> None:
        """Load the test charts' catalogue."""
        status = await self.catalogs.refresh("ide")
        assert status.last_error is None, status.last_error

    def project(self, username: str = "alice") -> Project:
        """The personal project of `username`."""
        return personal_project(username, PROJECTS)

    def as_user(self, username: str = "alice") -> Impersonation:
        """Whom the platform acts as for `username`."""
        return self.bootstrap.impersonation(principal(username).identity)

    async def launch(self, username: str = "alice", **spec: Any) -> str:
        """Launch the `hello` chart for `username`; the release accepted."""
        values = spec.pop("values", {})
        accepted = await self.launcher.launch(
            principal(username),
            self.project(username),
            LaunchSpec("ide", "hello", None, values, **spec),
        )
        return accepted.release

    async def ended(self, release: str, username: str = "alice") -> list[LaunchEvent]:
        """Every event of the launch, once it has ended and its install task is over."""
        namespace = self.project(username).namespace
        launch = self.tracker.get(namespace, release)
        assert launch is not None
        async with asyncio.timeout(10):
            events = [e async for e in self.tracker.follow(launch)]
        await until(
            lambda: (
                not self.launcher.installing(namespace, release)
                and any(
                    r.action == "service.install" and r.target == f"{namespace}/{release}"
                    for r in self.outbox.rows
                )
            )
        )
        return events

    def meta(self, release: str, username: str = "alice") -> ServiceMeta | None:
        """The service's record in the cluster, if any."""
        found = self.kube.find(
            "Secret", objects.meta_name(release), self.project(username).namespace
        )
        return objects.read_meta(found) if found is not None else None

    def secret(self, name: str, username: str = "alice") -> KubeObject | None:
        """A Secret of the user's project, if it exists."""
        return self.kube.find("Secret", name, self.project(username).namespace)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until `check()` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.005)
