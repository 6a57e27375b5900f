"""What every settings group shares: the base model (unknown keys are errors) and checks."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Group(BaseModel):
    """Base of every settings group: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_origins(setting: str, origins: list[str]) -> None:
    """Refuse (ValueError) any entry that is not an origin, scheme://host[:port]."""
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
            raise ValueError(
                f"{setting}: {origin!r} is not an origin "
                "(scheme://host[:port], no path, no trailing slash)"
            )
