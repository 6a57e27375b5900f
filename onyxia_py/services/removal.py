"""Deleting services on a user's behalf: one of theirs, or all they own in a project, each
audited once it is gone."""

from __future__ import annotations

import asyncio

from onyxia_py.accounts.models import Principal
from onyxia_py.errors import Forbidden
from onyxia_py.identity import Impersonation
from onyxia_py.projects.models import Project
from onyxia_py.services.launcher import Launcher
from onyxia_py.services.models import ServiceMeta


async def delete_service(
    launcher: Launcher, principal: Principal, meta: ServiceMeta, as_user: Impersonation
) -> None:
    """Uninstall a service the caller sees, with its metadata and volumes: their own only."""
    # A record the platform made for a release it found without one has no owner: any member
    # of the project may delete it.
    if meta.owner and meta.owner != principal.username:
        raise Forbidden(f"{meta.release} belongs to {meta.owner}: only they can delete it")
    await launcher.remove(meta.namespace, meta.release, as_user)
    await _audit(launcher, principal, meta.namespace, meta.release)


async def delete_owned(launcher: Launcher, principal: Principal, project: Project) -> list[str]:
    """Every service the caller owns in `project` (shared ones of others stay); their names."""
    await launcher.bootstrap.ensure(project, principal.identity)
    await launcher.cache.ensure(project.namespace)
    as_user = launcher.bootstrap.impersonation(principal.identity)
    mine = [
        s.meta.release
        for s in launcher.cache.summaries(project.namespace)
        if s.meta.owner == principal.username
    ]
    await asyncio.gather(*(launcher.remove(project.namespace, r, as_user) for r in mine))
    for release in mine:
        await _audit(launcher, principal, project.namespace, release)
    return sorted(mine)


async def _audit(launcher: Launcher, principal: Principal, namespace: str, release: str) -> None:
    await launcher.outbox.record(
        actor=principal.username,
        action="service.delete",
        target=f"{namespace}/{release}",
        outcome="success",
    )
