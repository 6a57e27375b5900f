"""Projects: a personal one per user, one per group (conventions section 1). Pure rules."""

from __future__ import annotations

import logging
import re

from onyxia_py.naming import is_label, prefixed_label
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings

log = logging.getLogger(__name__)


def personal_project(username: str, settings: ProjectSettings) -> Project:
    """The personal project of `username` (`user-<name>`, made safe if it has to be)."""
    namespace = prefixed_label(settings.user_namespace_prefix, username)
    return Project(id=namespace, namespace=namespace, owner=username, group=None)


def group_project(group: str, settings: ProjectSettings) -> Project | None:
    """The project of `group` after the operator's rewrite, or None if no valid label results."""
    name = group
    if settings.group_name_pattern:
        name = re.sub(settings.group_name_pattern, settings.group_name_replacement, name)
    namespace = settings.group_namespace_prefix + name.lower()
    if not is_label(namespace):
        # Conventions: an unusable group name is dropped with a log line, never a crash.
        log.info("group %r gives no valid project name (%r): ignored", group, namespace)
        return None
    return Project(id=namespace, namespace=namespace, owner=group, group=group)


def projects_of(username: str, groups: tuple[str, ...], settings: ProjectSettings) -> list[Project]:
    """The personal project first, then one per usable group, without duplicates."""
    found = [personal_project(username, settings)]
    for group in groups:
        project = group_project(group, settings)
        if project and all(p.id != project.id for p in found):
            found.append(project)
    return found
