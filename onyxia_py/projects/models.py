"""Projects as the rest of the platform sees them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Project:
    """A namespace users launch services into: personal (group None) or a group's."""

    id: str
    namespace: str
    owner: str
    group: str | None
