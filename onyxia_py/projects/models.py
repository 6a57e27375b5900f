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

    @property
    def owner_label(self) -> str:
        """The `onyxia_owner` label value: the owner made a valid label value."""
        return owner_label_value(self.owner)


def owner_label_value(owner: str) -> str:
    """`owner` as a label value (63 characters of [A-Za-z0-9._-], alphanumeric ends)."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in owner)[:63]
    return cleaned.strip("._-") or "unknown"
