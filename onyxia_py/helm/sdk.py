"""`HelmEngine` over helm-python-sdk: real Helm v4, in-process, no `helm` binary.

Nothing here builds a command line: the kubeconfig is passed by path and identities as
impersonation options, so no token ever reaches argv or logs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import helm_python as helm

from onyxia_py.errors import (
    Conflict,
    FieldError,
    Forbidden,
    Invalid,
    NotFound,
    OnyxiaError,
    OperationFailed,
    QuotaExceeded,
    Unavailable,
)
from onyxia_py.helm.engine import Cancellation, ProcessLocks, ReleaseInfo, ReleaseLocks, Values
from onyxia_py.identity import Impersonation
from onyxia_py.logs import redact
from onyxia_py.settings import HelmSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


def translate(exc: helm.HelmError, what: str) -> OnyxiaError:
    """The platform error for a Helm failure while doing `what`."""
    detail = redact(exc.detail or str(exc))
    lowered = detail.lower()
    message = f"{what}: {detail}"
    if "exceeded quota" in lowered:
        return QuotaExceeded(message)
    if "forbidden" in lowered:
        return Forbidden(message)
    if isinstance(exc, helm.HelmNotFoundError) or "not found" in lowered:
        return NotFound(message)
    if isinstance(exc, helm.HelmCancelledError):
        return OperationFailed(f"{what}: cancelled")
    if "cannot re-use a name" in lowered or "already exists" in lowered:
        return Conflict(message)
    if "specifications of the schema" in lowered:
        return Invalid(message, schema_errors(detail))
    if isinstance(
        exc,
        helm.HelmValuesError
        | helm.HelmRenderError
        | helm.HelmChartLoadError
        | helm.HelmChartInvalidError
        | helm.HelmInvalidArgError,
    ):
        return Invalid(message)
    if isinstance(exc, helm.HelmKubeError) or "connection refused" in lowered:
        return Unavailable(message)
    return OperationFailed(message)


_SCHEMA_LINE = re.compile(r"^\s*- at '([^']*)':\s*(.+)$", re.MULTILINE)


def schema_errors(detail: str) -> list[FieldError]:
    """One field error per schema violation Helm lists (`- at '/a/b': reason`)."""
    return [
        FieldError(path.strip("/").replace("/", ".") or "values", reason.strip())
        for path, reason in _SCHEMA_LINE.findall(detail)
    ]


def release_info(summary: dict[str, Any], namespace: str) -> ReleaseInfo:
    """A `ReleaseInfo` from the SDK's flat release summary."""
    return ReleaseInfo(
        name=str(summary.get("name", "")),
        namespace=str(summary.get("namespace") or namespace),
        revision=int(summary.get("revision") or 0),
        status=str(summary.get("status") or "unknown"),
        chart=str(summary.get("chart_name") or ""),
        chart_version=str(summary.get("chart_version") or ""),
        app_version=str(summary.get("app_version") or ""),
        updated=str(summary.get("deployed_at") or ""),
        notes=str(summary.get("notes") or ""),
    )


class SdkHelmEngine:
    """Helm releases through helm-python-sdk; blocking calls run in worker threads."""

    def __init__(
        self,
        settings: HelmSettings,
        *,
        kubeconfig: Path | None = None,
        kube_context: str | None = None,
        locks: ReleaseLocks | None = None,
    ) -> None:
        self._settings = settings
        self._kubeconfig = kubeconfig
        self._kube_context = kube_context
        # Concurrent writes to one release corrupt its history: serialise them per release
        # (across replicas when the locks are Leases).
        self._locks = locks or ProcessLocks()
        self._pool = ThreadPoolExecutor(
            max_workers=settings.max_concurrent_operations, thread_name_prefix="helm"
        )

    @contextmanager
    def _config(self, namespace: str, as_: Impersonation | None) -> Iterator[helm.Config]:
        config = helm.Config(
            kubeconfig_path=self._kubeconfig,
            kube_context=self._kube_context,
            kube_as_user=as_.user if as_ else None,
            kube_as_groups=list(as_.groups) if as_ and as_.groups else None,
            namespace=namespace,
            storage_driver=self._settings.storage_driver,
        )
        try:
            yield config
        finally:
            config.close()

    async def _run(self, what: str, call: Callable[[], T]) -> T:
        def guarded() -> T:
            try:
                return call()
            except helm.HelmError as exc:
                raise translate(exc, what) from None

        # Installs block a thread until the release is ready: give them their own pool, so they
        # never starve the short calls (Kubernetes, database) that share the default one.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, contextvars.copy_context().run, guarded)

    async def render(
        self, chart: Path, values: Values, *, release: str, namespace: str
    ) -> dict[str, str]:
        """The manifests `chart` renders to with `values`, by template path (no cluster)."""

        def call() -> dict[str, str]:
            with helm.Chart.load(chart) as loaded:
                return loaded.render(values, name=release, namespace=namespace, is_install=True)

        return await self._run(f"rendering {chart.name}", call)

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
        """Install `chart` as `release`; with `wait`, return once its resources are ready.

        With `dry_run`, the API server validates every manifest and nothing is created."""

        context = helm.HelmContext()
        if cancellation is not None:
            cancellation.on_cancel(context.cancel)

        def call() -> ReleaseInfo:
            with self._config(namespace, as_) as config:
                summary = config.install(
                    str(chart),
                    release,
                    values,
                    context=context,
                    namespace=namespace,
                    dry_run="server" if dry_run else None,
                    wait="watcher" if wait and not dry_run else None,
                    timeout=timeout_seconds or self._settings.timeout_seconds,
                    description=description,
                )
            return release_info(summary, namespace)

        async with self._locks.hold(namespace, release, "install", cancellation):
            return await self._run(f"installing {release} in {namespace}", call)

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
        """Upgrade `release` to `chart` with `values` (which replace the previous ones)."""

        def call() -> ReleaseInfo:
            with self._config(namespace, as_) as config:
                summary = config.upgrade(
                    str(chart),
                    release,
                    values,
                    namespace=namespace,
                    wait="watcher" if wait else None,
                    timeout=timeout_seconds or self._settings.timeout_seconds,
                    max_history=self._settings.max_history,
                    reset_values=True,
                )
            return release_info(summary, namespace)

        async with self._locks.hold(namespace, release, "upgrade"):
            return await self._run(f"upgrading {release} in {namespace}", call)

    async def uninstall(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Remove `release` and its resources."""

        def call() -> None:
            with self._config(namespace, as_) as config:
                config.uninstall(release, ignore_not_found=missing_ok)

        async with self._locks.hold(namespace, release, "uninstall"):
            await self._run(f"uninstalling {release} from {namespace}", call)

    async def list(self, namespace: str, *, as_: Impersonation | None = None) -> list[ReleaseInfo]:
        """Every release of `namespace`, whatever its state."""

        def call() -> list[ReleaseInfo]:
            with self._config(namespace, as_) as config:
                return [release_info(s, namespace) for s in config.list(all_states=True)]

        return await self._run(f"listing releases of {namespace}", call)

    async def status(
        self, release: str, *, namespace: str, as_: Impersonation | None = None
    ) -> ReleaseInfo:
        """The current state of `release`, with its notes."""

        def call() -> ReleaseInfo:
            with self._config(namespace, as_) as config:
                return release_info(config.status(release), namespace)

        return await self._run(f"reading release {release} in {namespace}", call)

    async def get_values(
        self,
        release: str,
        *,
        namespace: str,
        as_: Impersonation | None = None,
        all_values: bool = False,
    ) -> Values:
        """The values given at install (or, with `all_values`, merged with the chart's)."""

        def call() -> Values:
            with self._config(namespace, as_) as config:
                return config.get_values(release, all_values=all_values)

        return await self._run(f"reading values of {release} in {namespace}", call)
