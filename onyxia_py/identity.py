"""Who a call to Kubernetes or Helm is made as."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from onyxia_py.errors import FieldError, Invalid

# Impersonation travels in HTTP headers: control characters could forge other headers.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Kubernetes' own identities (system:masters, system:serviceaccount:..., system:nodes): a claim
# naming one must never become the identity the platform acts as.
RESERVED_PREFIX = "system:"


@dataclass(frozen=True)
class Impersonation:
    """An end user (and their groups) the platform acts as, so the API server's RBAC decides."""

    user: str
    groups: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        errors = [
            FieldError(name, "must be non-empty, hold no control characters, not be system:*")
            for name, value in [("user", self.user), *(("groups", g) for g in self.groups)]
            if not value or _CONTROL.search(value) or value.startswith(RESERVED_PREFIX)
        ]
        if errors:
            raise Invalid("cannot act as this identity", errors)


class ActingIdentity(Protocol):
    """Whom the platform acts as in a managed namespace, for background work: its owner, read
    from the project's `onyxia-admin` RoleBinding (the projects' bootstrap)."""

    async def acting_identity(self, namespace: str, group_user: str) -> Impersonation | None:
        """The owner (a group project's: `group_user` in its group); None without a binding."""
        ...
