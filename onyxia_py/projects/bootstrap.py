"""Project bootstrap: the namespace and what makes it usable, created or brought up to date
with the platform's own identity (idempotent; runs at login and before launches)."""

from __future__ import annotations

import logging
import time
from typing import Any

from onyxia_py.accounts.models import Identity
from onyxia_py.errors import Conflict, NotFound, OnyxiaError
from onyxia_py.identity import RESERVED_PREFIX, Impersonation
from onyxia_py.kube import Kube
from onyxia_py.projects import objects
from onyxia_py.projects.core import projects_of
from onyxia_py.projects.models import Project
from onyxia_py.projects.ownership import Owner, owner_of, recorded_owner
from onyxia_py.settings import ProjectSettings

log = logging.getLogger(__name__)

# A project bootstrapped this recently is not checked again (every step is idempotent anyway).
FRESH_SECONDS = 60.0


class ProjectBootstrap:
    """Creates and maintains project namespaces, their RoleBinding, quota, limits and policy."""

    def __init__(self, kube: Kube, settings: ProjectSettings) -> None:
        self.kube = kube
        self.settings = settings
        self._fresh: dict[tuple[str, str, str], float] = {}

    def impersonation(self, identity: Identity) -> Impersonation:
        """The Kubernetes identity a person acts as in their projects."""
        groups = (self.settings.kubernetes_group_prefix + g for g in identity.groups)
        # A provider claiming `system:masters` for someone must not make them cluster admin.
        return Impersonation(
            self.settings.kubernetes_user_prefix + identity.username,
            tuple(g for g in groups if not g.startswith(RESERVED_PREFIX)),
        )

    async def acting_identity(self, namespace: str, group_user: str) -> Impersonation | None:
        """Whom the platform acts as in a managed namespace (for background work): its owner,
        read from the `onyxia-admin` RoleBinding; None when the namespace has none."""
        try:
            binding = await self.kube.get("RoleBinding", "onyxia-admin", namespace)
        except NotFound:
            return None
        return objects.binding_identity(binding, group_user)

    def quota_for(self, project: Project, roles: tuple[str, ...]) -> dict[str, str]:
        """The ResourceQuota a project gets: by role (sorted), else the user or group default."""
        if project.group is not None:
            return self.settings.group_quota
        for role in sorted(roles):
            if role in self.settings.role_quotas:
                return self.settings.role_quotas[role]
        return self.settings.user_quota

    async def ensure(self, project: Project, identity: Identity) -> None:
        """Bring one project up to date."""
        owner = owner_of(project, identity)
        key = (project.id, owner.name, ",".join(sorted(identity.roles)))
        if time.monotonic() - self._fresh.get(key, -FRESH_SECONDS) < FRESH_SECONDS:
            return
        settings = self.settings
        subject = (
            settings.kubernetes_group_prefix + project.group
            if project.group is not None
            else settings.kubernetes_user_prefix + identity.username
        )
        binding = objects.admin_binding(project, subject)
        await self._check_owner(project, owner, binding)
        await self.kube.apply(
            objects.namespace(
                project,
                settings.namespace_labels,
                {**settings.namespace_annotations, **owner.annotations()},
                settings.pod_security,
            )
        )
        await self.kube.apply(binding)
        # The authorizer learns of RoleBindings a moment after they are written: acting as the
        # user before then would be refused.
        member = (
            Impersonation("onyxia-py:member-check", (subject,))
            if project.group is not None
            else Impersonation(subject)
        )
        await self.kube.wait_allowed(member, "create", "secrets", project.namespace)
        if settings.quota_enabled:
            await self._quota(project, self.quota_for(project, identity.roles))
        if settings.limit_range:
            await self.kube.apply(objects.limit_range(project, settings.limit_range))
        if settings.network_policy:
            await self.kube.apply(objects.isolation_policy(project, settings.ingress_namespace))
        self._fresh[key] = time.monotonic()

    async def _check_owner(self, project: Project, owner: Owner, binding: dict[str, Any]) -> None:
        """Conflict unless the namespace is new or already this owner's: a project is never
        handed over, and its RoleBinding never re-pointed to another subject."""
        try:
            current = await self.kube.get("Namespace", project.namespace)
        except NotFound:
            return
        recorded = recorded_owner(current)
        if recorded is not None and not recorded.same_as(owner):
            raise Conflict(f"namespace {project.namespace} belongs to another {recorded.kind}")
        try:
            existing = await self.kube.get("RoleBinding", "onyxia-admin", project.namespace)
        except NotFound:
            return
        if (existing.get("subjects") or []) != binding["subjects"]:
            raise Conflict(
                f"namespace {project.namespace} is bound to another subject: not re-pointed"
            )

    async def _quota(self, project: Project, hard: dict[str, str]) -> None:
        try:
            current = await self.kube.get("ResourceQuota", objects.QUOTA_NAME, project.namespace)
        except NotFound:
            current = None
        annotations = (current or {}).get("metadata", {}).get("annotations") or {}
        if objects.IGNORE_ANNOTATION in annotations:
            # Conventions: an operator who marked the quota keeps it as they set it.
            return
        await self.kube.apply(objects.resource_quota(project, hard))

    async def ensure_all(self, identity: Identity) -> None:
        """Every project of a person (at login); a failure is logged, never raised."""
        for project in projects_of(identity.username, identity.groups, self.settings):
            try:
                await self.ensure(project, identity)
            except OnyxiaError as exc:
                log.warning("bootstrap of %s failed: %s", project.id, exc.detail)
