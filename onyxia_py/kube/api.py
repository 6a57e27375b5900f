"""The Kubernetes calls the domain makes: a Protocol, so the client (or a fake in unit tests)
can stand behind it. Objects travel as plain JSON dicts, as the pure builders make them."""

from __future__ import annotations

from typing import Any, Protocol

from onyxia_py.identity import Impersonation

KubeObject = dict[str, Any]


class Kube(Protocol):
    """Kubernetes API calls, each made as the platform or, given `as_`, as an impersonated user."""

    async def get(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """One object; NotFound if it does not exist."""
        ...

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
        """The objects of `kind` (in `namespace`, or cluster-wide), optionally filtered.

        With `metadata_only`, only names, labels and annotations travel: Helm's release Secrets
        hold whole charts, and a listing needs none of it."""
        ...

    async def create(self, manifest: KubeObject, *, as_: Impersonation | None = None) -> KubeObject:
        """Create `manifest`; Conflict if it exists, Forbidden if RBAC says no."""
        ...

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
        """Patch one object (merge, strategic or json patch)."""
        ...

    async def apply(
        self,
        manifest: KubeObject,
        *,
        field_manager: str = "onyxia-py",
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """Create or update `manifest` with server-side apply (idempotent; our fields win)."""
        ...

    async def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete one object, its dependents in the background; NotFound unless `missing_ok`."""
        ...

    async def wait_allowed(
        self,
        who: Impersonation,
        verb: str,
        resource_name: str,
        namespace: str,
        *,
        limit_seconds: float = 10.0,
    ) -> None:
        """Wait until a fresh RoleBinding has reached the authorizer (it lags the write)."""
        ...
