"""What every benchmark prints: medians and p95 in one table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

Row = tuple[str, str, str, str, int]


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timing_row(name: str, samples: Sequence[float], unit: str, target: str) -> Row:
    """A table row of `samples` (in `unit`): median, p95, the target and the sample count."""
    digits = 1 if unit == "ms" else 2
    return (
        name,
        f"{statistics.median(samples):.{digits}f} {unit}",
        f"{percentile(samples, 0.95):.{digits}f} {unit}",
        target,
        len(samples),
    )


def print_table(rows: Sequence[Row]) -> None:
    """Rows as a Markdown table."""
    width = max(56, *(len(r[0]) for r in rows))
    print()
    print(f"| {'measure':<{width}} | {'median':>10} | {'p95':>10} | {'target':<26} | {'n':>4} |")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 12}|{'-' * 28}|{'-' * 6}|")
    for name, median, p95, target, n in rows:
        print(f"| {name:<{width}} | {median:>10} | {p95:>10} | {target:<26} | {n:>4} |")
