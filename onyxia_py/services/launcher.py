"""Launching a service: checks that answer at once, then an install in the background whose
phases are streamed; a failed launch is rolled back completely (release, metadata, volumes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from onyxia_py.accounts.models import Principal
from onyxia_py.catalog.context import ContextS3
from onyxia_py.catalog.launch import LaunchContext, LaunchRequest, prepare_form, prepare_values
from onyxia_py.catalog.values import without_platform_values
from onyxia_py.db import Audit
from onyxia_py.errors import (
    Conflict,
    Forbidden,
    NotFound,
    OnyxiaError,
    OperationFailed,
    Unavailable,
)
from onyxia_py.helm import DELETED, Cancellation, HelmEngine
from onyxia_py.identity import Impersonation
from onyxia_py.keyed_locks import KeyedLocks
from onyxia_py.kube import Kube
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.models import Project
from onyxia_py.services import objects
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.gpus import check_capacity
from onyxia_py.services.install_findings import note_copied_credentials, taken_name
from onyxia_py.services.lifecycle import store_mirror, update_meta
from onyxia_py.services.models import (
    MAX_RECORDED_EVENTS,
    FailureReason,
    LaunchEvent,
    Phase,
    ServiceMeta,
)
from onyxia_py.services.progress import verdicts
from onyxia_py.services.quota import free_share, manifests_objects, preflight, requested, total
from onyxia_py.services.refusals import REFUSALS, refusal_details
from onyxia_py.services.tracker import Launch, LaunchTracker
from onyxia_py.storage.injection import LaunchStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchSpec:
    """What a user asked to launch."""

    catalog: str
    chart: str
    version: str | None
    values: dict[str, Any]
    friendly_name: str | None = None
    share: bool = False
    keep_on_failure: bool = False
    # A release name the caller chose (Onyxia's web names its releases); None: a fresh one.
    release: str | None = None
    # The values are the whole form as the client computed it (Onyxia's web): the platform's
    # own values replace those it decides (catalog.values.without_platform_values).
    whole_form: bool = False


@dataclass(frozen=True)
class Accepted:
    """A launch the platform took on; it goes on in the background."""

    release: str
    namespace: str
    version: str
    warning: str | None = None


class Launcher:
    """Accepts launches, installs them as the user, and cleans up after failures."""

    def __init__(
        self,
        *,
        kube: Kube,
        helm: HelmEngine,
        bootstrap: ProjectBootstrap,
        launch_context: LaunchContext,
        audit: Audit,
        outbox: Audit,
        tracker: LaunchTracker,
        cache: ServiceCache,
        timeout_seconds: int,
        cleanup_seconds: float = 120.0,
        s3: LaunchStorage | None = None,
    ) -> None:
        self.kube = kube
        self.helm = helm
        self.bootstrap = bootstrap
        self.ctx = launch_context
        self.audit = audit  # rows written before the change: no row, no change
        self.outbox = outbox  # rows of what has happened already
        self.tracker = tracker
        self.cache = cache
        self.timeout_seconds = timeout_seconds
        self.cleanup_seconds = cleanup_seconds
        self.s3 = s3
        self._tasks: set[asyncio.Task[None]] = set()
        # The installs running here, each with what stops it (a DELETE does).
        self._installing: dict[tuple[str, str], Cancellation] = {}
        self._deleted: set[tuple[str, str]] = set()
        # Quota taken by launches accepted here whose pods do not exist yet, and the lock that
        # admits one launch per project at a time.
        self._reserved: dict[tuple[str, str], dict[str, Any]] = {}
        self._admission: KeyedLocks[str] = KeyedLocks()

    def installing(self, namespace: str, release: str) -> bool:
        """Whether this process is installing that release right now."""
        return (namespace, release) in self._installing

    async def launch(self, principal: Principal, project: Project, spec: LaunchSpec) -> Accepted:
        """Validate, check the quota, record the service and start installing it. A launch
        refused for its input, the quota, the cluster's capacity or a taken name is audited
        with its reason (an outage is not a refusal: it is only answered)."""
        try:
            return await self._launch(
                principal, project, await self._choices(principal, project, spec)
            )
        except REFUSALS as refusal:
            await self.outbox.record(
                actor=principal.identity.username,
                action="service.launch",
                target=f"{project.namespace}/{spec.release or spec.chart}",
                outcome="refused",
                details=refusal_details(spec, refusal),
            )
            raise

    async def _launch(self, principal: Principal, project: Project, spec: LaunchSpec) -> Accepted:
        identity = principal.identity
        as_user = self.bootstrap.impersonation(identity)
        await self.bootstrap.ensure(project, identity)
        release = await self._free_name(spec, project, as_user)
        # Validation and the quota come before any side effect: they see the values without
        # S3 credentials (which never change what a service requests), minted only after.
        version, values, files, wanted = await self._check(principal, project, spec, release)
        key = (project.namespace, release)
        await self._admit(project, as_user, key, wanted)
        try:
            return await self._accept(
                principal, project, spec, release, version, values, files, wanted
            )
        except BaseException:
            self._reserved.pop(key, None)
            raise

    async def check(
        self, principal: Principal, project: Project, spec: LaunchSpec
    ) -> tuple[str, dict[str, Any]]:
        """What a launch would install (version, values), refused as a launch would be for its
        values, its rendered manifests, the cluster's capacity or the project's quota (what it
        has left now); nothing is made."""
        if spec.release is not None:
            objects.check_release_name(spec.release)
        release = spec.release or objects.release_name(spec.chart)
        spec = await self._choices(principal, project, spec)
        version, values, _, wanted = await self._check(principal, project, spec, release)
        quota = await self._known_quota(principal, project)  # the launch reads it for sure
        preflight(quota, wanted, project.namespace, self._pending(project))
        return version, values

    async def free_share(self, principal: Principal, project: Project) -> dict[str, Decimal]:
        """What the project's quota has left now (less what launches accepted here a moment
        ago will take), key by key; empty without a quota, or when it cannot be read now."""
        return free_share(await self._known_quota(principal, project), self._pending(project))

    async def _known_quota(self, principal: Principal, project: Project) -> dict[str, Any] | None:
        """The project's quota for a check or a hint; None when there is none, the project is
        not set up yet (its member cannot read a namespace that does not exist) or the cluster
        is away."""
        try:
            return await self._quota(project, self.bootstrap.impersonation(principal.identity))
        except (Unavailable, Forbidden):
            return None

    async def _choices(
        self, principal: Principal, project: Project, spec: LaunchSpec
    ) -> LaunchSpec:
        """A whole-form spec reduced to the user's choices: the platform's own values replace
        those it decides, and only the choices are kept on the service's record."""
        if not spec.whole_form:
            return spec
        request = LaunchRequest(principal, project, spec.catalog, spec.chart, spec.version, None)
        form = (await prepare_form(self.ctx, request)).form
        values = without_platform_values(form.schema, spec.values)
        return replace(spec, values=values, whole_form=False)

    def _pending(self, project: Project) -> dict[str, Decimal]:
        namespace = project.namespace
        return total(w for (ns, _), w in self._reserved.items() if ns == namespace)

    async def _check(
        self, principal: Principal, project: Project, spec: LaunchSpec, release: str
    ) -> tuple[str, dict[str, Any], Any, dict[str, Any]]:
        request = LaunchRequest(principal, project, spec.catalog, spec.chart, spec.version, None)
        version, values = await prepare_values(self.ctx, request, spec.values)
        files = await self.ctx.catalogs.chart_files(spec.catalog, spec.chart, version)
        manifests = await self.helm.render(
            files.directory, values, release=release, namespace=project.namespace
        )
        made = manifests_objects(manifests)
        wanted = requested(made)
        if wanted.get("requests.nvidia.com/gpu"):
            check_capacity(made, await self.kube.list("Node"))
        return version, values, files, wanted

    async def _admit(
        self,
        project: Project,
        as_user: Impersonation,
        key: tuple[str, str],
        wanted: dict[str, Any],
    ) -> None:
        """Check the quota and reserve what the launch will take, one launch of the project
        at a time: concurrent launches are refused here (403), never after their 202."""
        namespace = project.namespace
        async with self._admission.hold(namespace):  # dropped once nobody waits for it
            quota = await self._quota(project, as_user)
            preflight(quota, wanted, namespace, self._pending(project))
            self._reserved[key] = wanted

    async def _accept(
        self,
        principal: Principal,
        project: Project,
        spec: LaunchSpec,
        release: str,
        version: str,
        values: dict[str, Any],
        files: Any,
        wanted: dict[str, Any],
    ) -> Accepted:
        identity = principal.identity
        as_user = self.bootstrap.impersonation(identity)
        # S3 credentials go into the `s3.*` context; a failing S3 server only warns.
        s3 = await self.s3.prepare(principal, project, release) if self.s3 else None
        if s3 is not None and s3.context is not None:
            request = LaunchRequest(
                principal, project, spec.catalog, spec.chart, version, s3.context
            )
            version, values = await prepare_values(self.ctx, request, spec.values)
        accepted = f"{spec.chart} {version} accepted"
        if s3 is not None and s3.warning:
            accepted += f"; warning: {s3.warning}"
        first = LaunchEvent(Phase.ACCEPTED, accepted, datetime.now(UTC))
        now = first.at.isoformat(timespec="seconds")
        meta = ServiceMeta(
            release=release,
            namespace=project.namespace,
            catalog=spec.catalog,
            chart=spec.chart,
            version=version,
            owner=identity.username,
            friendly_name=spec.friendly_name or spec.chart,
            share=spec.share and project.group is not None,
            created=now,
            overrides=spec.values,
            running_since=now,
            gpus=int(wanted.get("requests.nvidia.com/gpu", 0)),
            events=(first,),
        )
        # The audit row comes before anything is made in the cluster: a launch the database
        # cannot record is refused (503) with nothing to clean up.
        await self.audit.record(
            actor=identity.username,
            action="service.launch",
            target=f"{project.namespace}/{release}",
            outcome="accepted",
            details={"catalog": spec.catalog, "chart": spec.chart, "version": version},
        )
        if self.s3 is not None and s3 is not None:
            await self.s3.store(s3, as_user)
        # The record exists before the release: a failing install is never invisible.
        try:
            await self._create_record(meta, as_user)
        except BaseException:
            if self.s3 is not None and s3 is not None:  # no orphan credentials Secret
                await self.s3.discard(project.namespace, release, as_user)
            raise
        launch = self.tracker.start(project.namespace, release, identity.username, first)
        launch.save = lambda: self._save_events(launch, as_user)
        task = asyncio.create_task(
            self._install(
                launch,
                files.directory,
                values,
                as_user,
                spec.keep_on_failure,
                s3.context if s3 is not None else None,
            ),
            name=f"install-{release}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Accepted(release, project.namespace, version, s3.warning if s3 else None)

    async def _create_record(self, meta: ServiceMeta, as_user: Impersonation) -> None:
        """The record Secret and its mirror, both or neither."""
        stored = await self.kube.create(objects.meta_secret(meta), as_=as_user)
        try:
            await store_mirror(self.kube, stored, as_user)
        except BaseException:
            await self.kube.delete(
                "Secret",
                objects.meta_name(meta.release),
                meta.namespace,
                as_=as_user,
                missing_ok=True,
            )
            raise
        self.cache.observe(stored)

    async def _free_name(self, spec: LaunchSpec, project: Project, as_user: Impersonation) -> str:
        if spec.release is not None:
            objects.check_release_name(spec.release)
        for _ in range(10):
            release = spec.release or objects.release_name(spec.chart)
            try:
                await self.kube.get(
                    "Secret", objects.meta_name(release), project.namespace, as_=as_user
                )
            except NotFound:
                return release
            if spec.release is not None:
                raise Conflict(f"a service named {release} exists already in {project.id}")
        raise Conflict("could not find a free release name: try again")

    async def _quota(self, project: Project, as_user: Impersonation) -> dict[str, Any] | None:
        try:
            return await self.kube.get(
                "ResourceQuota", "onyxia-quota", project.namespace, as_=as_user
            )
        except NotFound:
            return None

    async def _install(
        self,
        launch: Launch,
        chart_dir: Any,
        values: dict[str, Any],
        as_user: Impersonation,
        keep: bool,
        s3: ContextS3 | None = None,
    ) -> None:
        """Install, then end the launch whatever happens: running, or failed with a reason
        and rolled back, within the Helm timeout plus the cleanup time."""
        key = (launch.namespace, launch.release)
        cancellation = self._installing[key] = Cancellation()
        try:
            async with asyncio.timeout(self.timeout_seconds + self.cleanup_seconds / 2):
                await note_copied_credentials(
                    self.kube, self.helm, self.cache, launch, chart_dir, values, as_user, s3
                )
                failure = await self._attempt(launch, chart_dir, values, as_user, cancellation)
        except TimeoutError:
            cancellation.cancel()
            failure = (FailureReason.TIMEOUT, f"not ready within {self.timeout_seconds}s")
        except Exception as exc:  # our own bug must still end the launch, with a reason
            log.exception("install of %s/%s", launch.namespace, launch.release)
            cancellation.cancel()
            failure = (FailureReason.INSTALL, f"internal error ({type(exc).__name__})")
        finally:
            self._installing.pop(key, None)
            self._reserved.pop(key, None)
        if key in self._deleted or cancellation.reason == DELETED:
            # Deleted while installing (here or through another replica): the DELETE stopped
            # the install and removes everything.
            self._deleted.discard(key)
            await self.tracker.record(launch, Phase.FAILED, "deleted before it was ready")
            await self._audit(launch, "failure", {"reason": "deleted"})
            return
        if failure is None:
            await self.tracker.record(launch, Phase.RUNNING, "running")
            await self._audit(launch, "success", {})
            return
        reason, message = failure
        if not keep:
            # Said on the record first: its deletion tells every replica how the launch ended.
            removing = LaunchEvent(Phase.FAILED, message, datetime.now(UTC), reason)
            with contextlib.suppress(OnyxiaError):
                await self._save_events(launch, as_user, removing)
            message = await self._roll_back(launch, as_user, message)
        await self.tracker.record(launch, Phase.FAILED, message, reason)
        await self._audit(launch, "failure", {"reason": reason.value, "message": message})

    async def _attempt(
        self,
        launch: Launch,
        chart_dir: Any,
        values: dict[str, Any],
        as_user: Impersonation,
        cancellation: Cancellation,
    ) -> tuple[FailureReason, str] | None:
        diagnosis: list[tuple[FailureReason, str]] = []
        watcher = asyncio.create_task(self._watch(launch, as_user, cancellation, diagnosis))
        await self.tracker.record(launch, Phase.INSTALLING, "installing")
        failure: tuple[FailureReason, str] | None = None
        try:
            await self.helm.install(
                chart_dir,
                release=launch.release,
                namespace=launch.namespace,
                values=values,
                as_=as_user,
                wait=True,
                timeout_seconds=self.timeout_seconds,
                cancellation=cancellation,
            )
        except OnyxiaError as exc:
            failure = self._classify(exc.detail)
            taken = await taken_name(self.kube, exc.detail, launch.namespace, as_user)
            if taken is not None:
                failure = (FailureReason.INSTALL, taken)
        finally:
            watcher.cancel()
        return diagnosis[0] if diagnosis else failure  # the watcher's reason beats "cancelled"

    async def _roll_back(self, launch: Launch, as_user: Impersonation, message: str) -> str:
        """Remove what a failed launch made; the message says whether that worked."""
        try:
            async with asyncio.timeout(self.cleanup_seconds / 2):
                await self.remove(launch.namespace, launch.release, as_user, failure=message)
        except (OnyxiaError, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, OnyxiaError) else "it took too long"
            log.warning("rolling back %s/%s: %s", launch.namespace, launch.release, detail)
            # The record stays, saying so: the reconciler retries the cleanup.
            return f"{message} (cleaning up failed: {detail}; the platform retries)"
        return f"{message} (everything it created was removed)"

    def _classify(self, detail: str) -> tuple[FailureReason, str]:
        lowered = detail.lower()
        if "exceeded quota" in lowered:
            return FailureReason.QUOTA, detail
        if "deadline" in lowered or "timed out" in lowered or "timeout" in lowered:
            return FailureReason.TIMEOUT, f"not ready within {self.timeout_seconds}s"
        return FailureReason.INSTALL, detail

    async def _watch(
        self,
        launch: Launch,
        as_user: Impersonation,
        cancellation: Cancellation,
        diagnosis: list[tuple[FailureReason, str]],
    ) -> None:
        """Turn the pods' states (from the watch cache) into phases; stop a launch that
        cannot succeed."""
        progress = verdicts(self.kube, self.cache, launch.namespace, launch.release, as_user)
        async with contextlib.aclosing(progress):
            async for phase, failure in progress:
                if phase is not Phase.FAILED:
                    # Its pods exist: the quota's usage counts them now.
                    self._reserved.pop((launch.namespace, launch.release), None)
                if failure is not None:
                    diagnosis.append(failure)
                    cancellation.cancel()
                    return
                await self.tracker.record(launch, phase, phase.value)

    async def _save_events(
        self, launch: Launch, as_user: Impersonation, last: LaunchEvent | None = None
    ) -> None:
        """Put the launch's latest events (and `last`) on its record, for the other replicas."""
        events = tuple([*launch.events, *([last] if last else [])][-MAX_RECORDED_EVENTS:])
        try:
            stored = await update_meta(
                self.kube,
                launch.namespace,
                launch.release,
                lambda m: replace(m, events=events),
                as_user,
            )
        except NotFound:
            return  # removed meanwhile (a rollback, a DELETE): nothing left to follow there
        self.cache.observe(stored)

    async def _audit(self, launch: Launch, outcome: str, details: dict[str, Any]) -> None:
        """The install's audit row (through the outbox: the install has ended already)."""
        await self.outbox.record(
            actor=launch.owner,
            action="service.install",
            target=f"{launch.namespace}/{launch.release}",
            outcome=outcome,
            details=details,
        )

    async def remove(
        self,
        namespace: str,
        release: str,
        as_user: Impersonation,
        *,
        failure: str = "",
        keep_record: bool = False,
    ) -> None:
        """Uninstall a release, then delete its metadata and volumes. When the uninstall
        fails, the metadata stays (the service stays listed, with the reason) and the error
        is raised: nothing is said to be removed that is not."""
        self.cache.mark_deleting(namespace, release)
        running = self._installing.get((namespace, release))
        if running is not None and not keep_record:
            # An install in progress holds the release's Helm lock until it ends: stop it
            # rather than wait for it.
            self._deleted.add((namespace, release))
            running.cancel(DELETED)
        try:
            await self._remove(namespace, release, as_user, failure, keep_record)
        finally:
            self.cache.mark_deleting(namespace, release, False)

    async def roll_back(
        self, namespace: str, release: str, as_user: Impersonation, reason: str
    ) -> None:
        """Remove what an interrupted launch made but keep its record, failed with `reason`,
        so its owner sees why (and deletes it); raises when the uninstall fails."""
        await self.remove(namespace, release, as_user, failure=reason, keep_record=True)

    async def _remove(
        self,
        namespace: str,
        release: str,
        as_user: Impersonation,
        failure: str,
        keep_record: bool = False,
    ) -> None:
        try:
            await self.helm.uninstall(release, namespace=namespace, as_=as_user, missing_ok=True)
        except OnyxiaError as exc:
            log.warning("uninstalling %s/%s: %s", namespace, release, exc.detail)
            await self._mark_failed(namespace, release, as_user, failure, exc.detail)
            raise OperationFailed(
                f"{release} could not be uninstalled ({exc.detail}): it stays listed; try again"
            ) from None
        if keep_record:
            await self._record_failure(
                namespace, release, as_user, f"{failure} (everything it created was removed)"
            )
        else:
            for kind in ("Secret", "ConfigMap"):  # the mirror would go with it, a little later
                await self.kube.delete(
                    kind, objects.meta_name(release), namespace, as_=as_user, missing_ok=True
                )
            self.cache.forget(namespace, release)
        if self.s3 is not None:
            await self.s3.discard(namespace, release, as_user)
        claims = await self.kube.list(
            "PersistentVolumeClaim",
            namespace,
            label_selector=f"{objects.INSTANCE_LABEL}={release}",
            as_=as_user,
        )
        for claim in claims:
            await self.kube.delete(
                "PersistentVolumeClaim",
                claim["metadata"]["name"],
                namespace,
                as_=as_user,
                missing_ok=True,
            )

    async def _mark_failed(
        self, namespace: str, release: str, as_user: Impersonation, failure: str, detail: str
    ) -> None:
        """Say on the record why the service could not be removed (best effort)."""
        reason = f"{failure}; removal failed: {detail}" if failure else f"removal failed: {detail}"
        try:
            await self._record_failure(namespace, release, as_user, reason)
        except OnyxiaError as exc:
            log.warning("recording the failure of %s/%s: %s", namespace, release, exc.detail)

    async def _record_failure(
        self, namespace: str, release: str, as_user: Impersonation, reason: str
    ) -> None:
        stored = await update_meta(
            self.kube, namespace, release, lambda m: replace(m, failure=reason[:1000]), as_user
        )
        self.cache.observe(stored)

    async def close(self) -> None:
        """Wait for background installs to stop (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
