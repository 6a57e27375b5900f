"""Saved launch configurations: keep a launch, list, rename, delete, launch again."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from onyxia_py.api.catalogs import caller_project, visible_catalog
from onyxia_py.api.deps import (
    CatalogsDep,
    LaunchContextDep,
    Reader,
    SavedDep,
    ServiceLauncherDep,
    SettingsDep,
)
from onyxia_py.api.deps import Launcher as LaunchingUser
from onyxia_py.api.problems import problems
from onyxia_py.api.services import AcceptedOut, start_launch
from onyxia_py.catalog.launch import LaunchRequest, prepare_values
from onyxia_py.db import SavedRecord
from onyxia_py.errors import NotFound
from onyxia_py.services.launcher import LaunchSpec

router = APIRouter(
    prefix="/api/projects/{project}/saved",
    tags=["saved launches"],
    responses=problems(404, 409, 502),
)

ProjectId = Annotated[str, Path(max_length=63)]
# Ids are the database's 64-bit integers: a larger one is refused (422), never sent to it.
SavedId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SaveIn(BaseModel):
    """A launch to keep."""

    name: str = Field(min_length=1, max_length=100)
    catalog: str = Field(max_length=63)
    chart: str = Field(max_length=253)
    version: str | None = Field(None, max_length=64)
    values: dict[str, Any] = Field(default_factory=dict)


class RenameIn(BaseModel):
    """A new name."""

    name: str = Field(min_length=1, max_length=100)


class SavedOut(BaseModel):
    """A saved launch."""

    id: int
    name: str
    catalog: str
    chart: str
    version: str | None
    values: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, record: SavedRecord) -> SavedOut:
        """From the stored record."""
        return cls(
            id=record.id,
            name=record.name,
            catalog=record.catalog,
            chart=record.chart,
            version=record.version,
            values=record.values,
            created_at=record.created_at,
        )


@router.post("", summary="Save a launch", status_code=201)
async def save(
    project: ProjectId,
    body: SaveIn,
    principal: LaunchingUser,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launch_context: LaunchContextDep,
    saved: SavedDep,
) -> SavedOut:
    """Keep a launch; its values are checked now, as a launch would check them."""
    target = caller_project(principal, settings, project)
    visible_catalog(principal, catalogs, body.catalog, target)
    request = LaunchRequest(principal, target, body.catalog, body.chart, body.version)
    await prepare_values(launch_context, request, body.values)
    record = await saved.save(
        user_id=principal.user_id,
        project=target.id,
        name=body.name,
        catalog=body.catalog,
        chart=body.chart,
        version=body.version,
        values=body.values,
    )
    return SavedOut.of(record)


@router.get("", summary="My saved launches in this project")
async def list_saved(
    project: ProjectId, principal: Reader, settings: SettingsDep, saved: SavedDep
) -> list[SavedOut]:
    """Newest first."""
    target = caller_project(principal, settings, project)
    return [SavedOut.of(r) for r in await saved.of(principal.user_id, target.id)]


@router.patch("/{saved_id}", summary="Rename a saved launch")
async def rename(
    project: ProjectId,
    saved_id: SavedId,
    body: RenameIn,
    principal: LaunchingUser,
    settings: SettingsDep,
    saved: SavedDep,
) -> SavedOut:
    """Change its name."""
    target = caller_project(principal, settings, project)
    if not await saved.rename(principal.user_id, target.id, saved_id, body.name):
        raise NotFound(f"no saved launch {saved_id}")
    record = await saved.get(principal.user_id, target.id, saved_id)
    assert record is not None
    return SavedOut.of(record)


@router.delete("/{saved_id}", summary="Delete a saved launch", status_code=204)
async def delete(
    project: ProjectId,
    saved_id: SavedId,
    principal: LaunchingUser,
    settings: SettingsDep,
    saved: SavedDep,
) -> Response:
    """Forget it."""
    target = caller_project(principal, settings, project)
    if not await saved.delete(principal.user_id, target.id, saved_id):
        raise NotFound(f"no saved launch {saved_id}")
    return Response(status_code=204)


@router.post("/{saved_id}/launch", summary="Launch a saved configuration", status_code=202)
async def launch(
    project: ProjectId,
    saved_id: SavedId,
    principal: LaunchingUser,
    settings: SettingsDep,
    catalogs: CatalogsDep,
    launcher: ServiceLauncherDep,
    saved: SavedDep,
) -> AcceptedOut:
    """A new service from the saved chart, version and values."""
    target = caller_project(principal, settings, project)
    record = await saved.get(principal.user_id, target.id, saved_id)
    if record is None:
        raise NotFound(f"no saved launch {saved_id}")
    return await start_launch(
        principal,
        catalogs,
        launcher,
        target,
        LaunchSpec(
            catalog=record.catalog,
            chart=record.chart,
            version=record.version,
            values=record.values,
            friendly_name=record.name,
        ),
    )
