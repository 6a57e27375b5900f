"""Administration of catalogues: status, refresh, and catalogues kept in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ValidationError

from onyxia_py.api.deps import (
    Admin,
    AuditDep,
    BaseDirDep,
    CatalogOriginsDep,
    CatalogsDep,
    CatalogStoreDep,
    CipherDep,
)
from onyxia_py.api.problems import problems
from onyxia_py.catalog.models import CatalogSpec, CatalogStatus
from onyxia_py.catalog.specs import parse_spec
from onyxia_py.errors import Conflict, FieldError, Invalid, NotFound

router = APIRouter(
    prefix="/api/admin/catalogs", tags=["administration"], responses=problems(404, 409)
)

CatalogId = Annotated[str, Path(max_length=63)]
SEAL_CONTEXT = "catalog-password"


class StatusOut(BaseModel):
    """How loading a catalogue went."""

    last_success: datetime | None
    last_error: str | None
    last_attempt: datetime | None
    chart_count: int
    duration_seconds: float | None

    @classmethod
    def of(cls, status: CatalogStatus | None) -> StatusOut:
        """From the domain status."""
        if status is None:
            return cls(
                last_success=None,
                last_error=None,
                last_attempt=None,
                chart_count=0,
                duration_seconds=None,
            )
        return cls(
            last_success=status.last_success,
            last_error=status.last_error,
            last_attempt=status.last_attempt,
            chart_count=status.chart_count,
            duration_seconds=status.duration_seconds,
        )


class AdminCatalogOut(BaseModel):
    """A catalogue with its whole definition, except the password (write-only)."""

    id: str
    origin: str
    definition: dict[str, Any]
    has_password: bool
    status: StatusOut


def _out(
    spec: CatalogSpec, catalogs: CatalogsDep, catalog_origins: CatalogOriginsDep
) -> AdminCatalogOut:
    statuses = {s.id: s for s in catalogs.statuses()}
    return AdminCatalogOut(
        id=spec.id,
        origin="database" if spec.id in catalog_origins.database else "file",
        definition=spec.model_dump(mode="json", by_alias=True, exclude={"password"}),
        has_password=spec.password is not None,
        status=StatusOut.of(statuses.get(spec.id)),
    )


def _spec(raw: dict[str, Any], base_dir: BaseDirDep) -> CatalogSpec:
    try:
        return parse_spec(raw, base_dir)
    except ValidationError as exc:
        errors = [
            FieldError(".".join(str(p) for p in e["loc"]) or "body", str(e["msg"]))
            for e in exc.errors(include_input=False)
        ]
        raise Invalid("the catalogue definition is not valid", errors) from None


@router.get("", summary="Every catalogue with its status")
async def list_catalogs(
    _admin: Admin, catalogs: CatalogsDep, catalog_origins: CatalogOriginsDep
) -> list[AdminCatalogOut]:
    """All catalogues, restricted or not, with their load status."""
    return [_out(s, catalogs, catalog_origins) for s in catalogs.specs()]


@router.post("/{catalog_id}/refresh", summary="Reload a catalogue now")
async def refresh(
    catalog_id: CatalogId, admin: Admin, catalogs: CatalogsDep, audit_log: AuditDep
) -> StatusOut:
    """Reload now; the answer says whether it worked (the last good copy stays otherwise)."""
    status = await catalogs.refresh(catalog_id)
    await audit_log.record(
        actor=admin.username,
        action="catalog.refresh",
        target=f"catalog/{catalog_id}",
        outcome="failure" if status.last_error else "success",
    )
    return StatusOut.of(status)


async def _save(
    raw: dict[str, Any],
    admin: Admin,
    catalogs: CatalogsDep,
    catalog_store: CatalogStoreDep,
    catalog_origins: CatalogOriginsDep,
    cipher: CipherDep,
    base_dir: BaseDirDep,
    audit_log: AuditDep,
    create: bool,
) -> CatalogSpec:
    spec = _spec(raw, base_dir)
    existing = catalog_origins.database
    if not create and spec.id not in existing:
        if any(s.id == spec.id for s in catalogs.specs()):
            raise Conflict(f"catalogue {spec.id!r} is declared in a file: change it there")
        raise NotFound(f"no catalogue {spec.id!r}")
    if create and any(s.id == spec.id for s in catalogs.specs()):
        raise Conflict(f"catalogue {spec.id!r} exists already")
    if spec.password is None and not create:
        # Write-only: leaving the password out of an update keeps the one stored.
        spec = spec.model_copy(update={"password": catalogs.spec(spec.id).password})
    sealed = (
        cipher.encrypt(spec.password.get_secret_value(), SEAL_CONTEXT) if spec.password else None
    )
    definition = spec.model_dump(mode="json", by_alias=True, exclude={"password"})
    await catalog_store.save(spec.id, definition, sealed, admin.username)
    existing.add(spec.id)
    await catalogs.put(spec, create=create)
    await audit_log.record(
        actor=admin.username,
        action="catalog.create" if create else "catalog.update",
        target=f"catalog/{spec.id}",
        outcome="success",
        details={"location": spec.location},
    )
    return spec


@router.post("", summary="Add a catalogue", status_code=201)
async def create(
    definition: Annotated[dict[str, Any], Body()],
    admin: Admin,
    catalogs: CatalogsDep,
    catalog_store: CatalogStoreDep,
    catalog_origins: CatalogOriginsDep,
    cipher: CipherDep,
    base_dir: BaseDirDep,
    audit_log: AuditDep,
) -> AdminCatalogOut:
    """Store a new catalogue (Onyxia field names) and load it."""
    return _out(
        await _save(
            definition,
            admin,
            catalogs,
            catalog_store,
            catalog_origins,
            cipher,
            base_dir,
            audit_log,
            create=True,
        ),
        catalogs,
        catalog_origins,
    )


@router.put("/{catalog_id}", summary="Change a catalogue made here")
async def update(
    catalog_id: CatalogId,
    definition: Annotated[dict[str, Any], Body()],
    admin: Admin,
    catalogs: CatalogsDep,
    catalog_store: CatalogStoreDep,
    catalog_origins: CatalogOriginsDep,
    cipher: CipherDep,
    base_dir: BaseDirDep,
    audit_log: AuditDep,
) -> AdminCatalogOut:
    """Replace a database catalogue; without `password` the stored one is kept."""
    if definition.get("id", catalog_id) != catalog_id:
        raise Invalid("the id cannot change", [FieldError("id", f"must be {catalog_id!r}")])
    return _out(
        await _save(
            {**definition, "id": catalog_id},
            admin,
            catalogs,
            catalog_store,
            catalog_origins,
            cipher,
            base_dir,
            audit_log,
            create=False,
        ),
        catalogs,
        catalog_origins,
    )


@router.delete("/{catalog_id}", summary="Remove a catalogue made here", status_code=204)
async def delete(
    catalog_id: CatalogId,
    admin: Admin,
    catalogs: CatalogsDep,
    catalog_store: CatalogStoreDep,
    catalog_origins: CatalogOriginsDep,
    audit_log: AuditDep,
) -> Response:
    """Delete a database catalogue (file catalogues are changed in their file)."""
    if catalog_id not in catalog_origins.database:
        catalogs.spec(catalog_id)
        raise Conflict(f"catalogue {catalog_id!r} is declared in a file: change it there")
    await catalog_store.delete(catalog_id)
    catalog_origins.database.discard(catalog_id)
    await catalogs.remove(catalog_id)
    await audit_log.record(
        actor=admin.username,
        action="catalog.delete",
        target=f"catalog/{catalog_id}",
        outcome="success",
    )
    return Response(status_code=204)
