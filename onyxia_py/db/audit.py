"""What the domain writes audit rows to: Protocols, so the database's `AuditLog`, the outbox in
front of it, or a recording fake in unit tests can stand behind them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Audit(Protocol):
    """Where a change's audit row goes: the database's log (rows written before the change: no
    row, no change) or the audit outbox (rows of changes already made)."""

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any] | None = None,
    ) -> object:
        """Append one row: who did what to which target, and how it ended."""
        ...


class AuditStore(Protocol):
    """The database's audit log itself, which also takes rows delivered late (with the time and
    request id of when they happened)."""

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        outcome: str,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
        request_id: str | None = None,
    ) -> object:
        """Append one row, tagged with `at` and `request_id` (else now and the current one)."""
        ...
