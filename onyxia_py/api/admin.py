"""Administration API (admin role and, for tokens, the admin scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from onyxia_py.api.deps import Admin, AuditDep

router = APIRouter(prefix="/api/admin", tags=["administration"])


class AuditEventOut(BaseModel):
    """One entry of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    request_id: str | None
    details: dict[str, Any]


@router.get("/audit", summary="Recent audit events")
async def audit(
    _admin: Admin,
    audit_log: AuditDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=255)] = None,
    action: Annotated[str | None, Query(max_length=255, description="Prefix.")] = None,
    target: Annotated[str | None, Query(max_length=255, description="Substring.")] = None,
    outcome: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 time.")] = None,
) -> list[AuditEventOut]:
    """The latest events first, optionally filtered (all filters combine)."""
    events = await audit_log.recent(
        limit=limit, actor=actor, action=action, target=target, outcome=outcome, since=since
    )
    return [AuditEventOut(**vars(e)) for e in events]
