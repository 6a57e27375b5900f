"""Onyxia's request headers as dependencies: `ONYXIA-PROJECT` picks the project (missing: the
personal one; unknown or not the caller's: 403), `ONYXIA-REGION` is accepted and ignored (one
region here, whatever the web names)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from onyxia_py.api.catalogs import caller_project
from onyxia_py.api.deps import Reader, SettingsDep
from onyxia_py.projects.models import Project

ProjectHeader = Annotated[
    str | None,
    Header(
        alias="ONYXIA-PROJECT",
        max_length=63,
        description="Project id (Onyxia's); missing: the caller's personal project.",
    ),
]
RegionHeader = Annotated[
    str | None,
    Header(
        alias="ONYXIA-REGION",
        max_length=100,
        description="Region id (Onyxia's); any value: this platform is one region.",
    ),
]


async def onyxia_project(
    principal: Reader,
    settings: SettingsDep,
    project: ProjectHeader = None,
    region: RegionHeader = None,
) -> Project:
    """The project the request is about, one of the caller's (Forbidden otherwise)."""
    del region  # one region: nothing to choose
    return caller_project(principal, settings, project.strip() or None if project else None)


OnyxiaProject = Annotated[Project, Depends(onyxia_project)]
