"""Kubernetes resource quantities ("500m", "2Gi", "1.5") as exact numbers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from onyxia_py.errors import Invalid

SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | float) -> Decimal:
    """The number a quantity stands for (cores, bytes, or a count)."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in SUFFIXES:
        raise Invalid(f"{value!r} is not a Kubernetes quantity")
    try:
        return Decimal(match.group(1)) * SUFFIXES[match.group(2)]
    except InvalidOperation:
        raise Invalid(f"{value!r} is not a Kubernetes quantity") from None


def quantity_or_none(value: object) -> Decimal | None:
    """A quantity (string or number) as a number, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return parse_quantity(value)
    except Invalid:
        return None


def human(resource: str, amount: Decimal) -> str:
    """`amount` of `resource` the way a person reads it (4 CPU, 1.5 CPU, 8 GiB, 2 GPU)."""
    if resource.startswith("count/"):
        return f"{_trim(amount)} {resource.removeprefix('count/')}"
    if "memory" in resource or "storage" in resource:
        gib = amount / SUFFIXES["Gi"]
        return f"{_trim(gib)} GiB"
    if "cpu" in resource:
        return f"{_trim(amount)} CPU"
    if "gpu" in resource:
        return f"{_trim(amount)} GPU"
    return _trim(amount)


def _trim(amount: Decimal) -> str:
    rounded = amount.quantize(Decimal("0.01")).normalize()
    text = format(rounded, "f")
    return text
