"""Which group projects a person may use: a project namespace belongs to exactly one group.

Two groups can map to one namespace (`TeamB` and `teamb` both give `projet-teamb`, and so can
the operator's rewrite). The first group seen claims it, in the database and on the namespace;
the other group gets no project, a clear reason, and an audit event for the administrators.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from onyxia_py.accounts.models import Identity
from onyxia_py.db import Audit
from onyxia_py.errors import NotFound, Unavailable
from onyxia_py.kube import Kube
from onyxia_py.projects.core import group_project
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings

log = logging.getLogger(__name__)

GROUP = "group"
USER = "user"
# Annotations on a project namespace naming its one owner (kept through database resets).
OWNER_KIND_ANNOTATION = "onyxia-py.io/owner-kind"
OWNER_ANNOTATION = "onyxia-py.io/owner"
OWNER_ISSUER_ANNOTATION = "onyxia-py.io/owner-issuer"


class OwnerStore(Protocol):
    """Where owners are recorded (the database)."""

    async def owners(self, namespaces: list[str]) -> dict[str, Any]: ...

    async def claim(self, namespace: str, *, kind: str, issuer: str, owner: str) -> Any: ...


@dataclass(frozen=True)
class Owner:
    """One owner: a user (issuer, subject) or a group (issuer, exact group name)."""

    kind: str
    issuer: str
    name: str

    def same_as(self, other: Owner) -> bool:
        """The same owner (an issuer left unrecorded, by older namespaces, matches any)."""
        issuers_agree = not self.issuer or not other.issuer or self.issuer == other.issuer
        return (self.kind, self.name) == (other.kind, other.name) and issuers_agree

    def annotations(self) -> dict[str, str]:
        """The namespace annotations that record this owner."""
        return {
            OWNER_KIND_ANNOTATION: self.kind,
            OWNER_ANNOTATION: self.name,
            OWNER_ISSUER_ANNOTATION: self.issuer,
        }


def owner_of(project: Project, identity: Identity) -> Owner:
    """Who `project` belongs to when `identity` uses it."""
    if project.group is not None:
        return Owner(GROUP, identity.issuer, project.group)
    return Owner(USER, identity.issuer, identity.subject)


def recorded_owner(namespace: dict[str, Any]) -> Owner | None:
    """The owner a namespace's annotations name, if any."""
    annotations = namespace.get("metadata", {}).get("annotations") or {}
    kind, name = annotations.get(OWNER_KIND_ANNOTATION), annotations.get(OWNER_ANNOTATION)
    if not kind or not name:
        return None
    return Owner(kind, annotations.get(OWNER_ISSUER_ANNOTATION, ""), name)


def refusal(group: str, namespace: str) -> str:
    """What a member of a refused group is told."""
    return (
        f"your group {group!r} gets no project: its name gives {namespace!r}, which belongs to "
        "another group. An administrator must rename one of the groups (or the rewrite rule)."
    )


class GroupProjects:
    """Decides, once per group and for good, which group owns each group namespace."""

    def __init__(
        self, store: OwnerStore, kube: Kube, settings: ProjectSettings, audit: Audit
    ) -> None:
        self.store = store
        self.kube = kube
        self.settings = settings
        self.audit = audit

    async def usable(self, identity: Identity) -> Identity:
        """`identity` with only the groups whose project is theirs; the others are moved to
        `refused_groups` (and audited)."""
        projects = {
            g: p for g in identity.groups if (p := group_project(g, self.settings)) is not None
        }
        if not projects:
            return identity
        known = await self.store.owners(sorted({p.namespace for p in projects.values()}))
        kept, refused = [], list(identity.refused_groups)
        for group in identity.groups:
            project = projects.get(group)
            if project is None:  # no valid project name: not a project group, kept as it is
                kept.append(group)
                continue
            mine = Owner(GROUP, identity.issuer, group)
            row = known.get(project.namespace)
            holder = (
                Owner(row.kind, row.issuer, row.owner)
                if row is not None
                else await self._claim(project.namespace, mine)
            )
            if holder.same_as(mine):
                kept.append(group)
            else:
                refused.append(group)
                await self._refused(identity, group, project.namespace, holder)
        if tuple(kept) == identity.groups:
            return identity
        return Identity(
            identity.issuer,
            identity.subject,
            identity.username,
            identity.email,
            tuple(kept),
            identity.roles,
            tuple(dict.fromkeys(refused)),
        )

    async def _claim(self, namespace: str, mine: Owner) -> Owner:
        # A namespace made before owners were recorded (or kept through a database reset)
        # names its owner itself: that owner is recorded, never the newcomer.
        holder = await self._cluster_owner(namespace) or mine
        row = await self.store.claim(
            namespace, kind=holder.kind, issuer=holder.issuer, owner=holder.name
        )
        return Owner(row.kind, row.issuer, row.owner)

    async def _cluster_owner(self, namespace: str) -> Owner | None:
        try:
            found = await self.kube.get("Namespace", namespace)
        except NotFound:
            return None
        except Unavailable as exc:
            # The database is the record; the cluster is asked only to adopt namespaces made
            # before owners were recorded. Bootstrap still never re-points their RoleBinding.
            log.warning("owner of %s not read from the cluster: %s", namespace, exc.detail)
            return None
        recorded = recorded_owner(found)
        if recorded is not None:
            return recorded
        try:
            binding = await self.kube.get("RoleBinding", "onyxia-admin", namespace)
        except NotFound:
            return None
        for subject in binding.get("subjects") or []:
            name = str(subject.get("name", ""))
            prefix = self.settings.kubernetes_group_prefix
            if subject.get("kind") == "Group" and name.startswith(prefix):
                return Owner(GROUP, "", name.removeprefix(prefix))
        return None

    async def _refused(self, identity: Identity, group: str, namespace: str, holder: Owner) -> None:
        log.warning(
            "group %r of %s refused project %s: it belongs to group %r",
            group,
            identity.username,
            namespace,
            holder.name,
        )
        await self.audit.record(
            actor=identity.username,
            action="project.refused",
            target=f"project/{namespace}",
            outcome="refused",
            details={"group": group, "owner": holder.name, "reason": refusal(group, namespace)},
        )
