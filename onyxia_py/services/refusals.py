"""What the audit log keeps of a launch the platform refused (issue #18 item 9).

A refusal changes nothing, so its row goes through the outbox (never a 503 for want of the
database); its details say which rule refused it and why, as the user was told.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from onyxia_py.errors import Conflict, Invalid, NoCapacity, OnyxiaError, QuotaExceeded

if TYPE_CHECKING:
    from onyxia_py.services.launcher import LaunchSpec

# The refusals of a launch's own request: its values or chart (422), the cluster's capacity
# (422), the project's quota (403) and a name taken (409). Outages are not among them.
REFUSALS = (Invalid, NoCapacity, QuotaExceeded, Conflict)

_MAX_FIELDS = 20


def refusal_details(spec: LaunchSpec, refusal: OnyxiaError) -> dict[str, Any]:
    """The audit row's details: what was asked for, the reason's slug and message, and the
    refused fields (at most 20; never their values)."""
    details: dict[str, Any] = {
        "catalog": spec.catalog,
        "chart": spec.chart,
        "version": spec.version,
        "reason": refusal.slug,
        "message": refusal.detail,
    }
    if isinstance(refusal, Invalid) and refusal.errors:
        details["fields"] = [
            {"field": e.field, "reason": e.reason} for e in refusal.errors[:_MAX_FIELDS]
        ]
    return details
