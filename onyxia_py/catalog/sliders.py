"""Slider bounds from the operator's settings, with the chart's own bounds as the outer limit.

A slider (`render: slider`) takes its `sliderMin`/`sliderMax`/`sliderStep` from, first found:
1. the user's role settings (`region.role_sliders`, roles in sorted order);
2. the registry schema that replaced the chart's node, if the operator wrote it for one of the
   user's roles (`<schemas_dir>/roles/<role>/<key>`);
3. the region settings (`region.sliders`);
4. the operator's registry schema (`<schemas_dir>/<key>`);
5. the chart's own inline node;
6. the bundled registry schema.
Whatever the source, the result stays within the chart's own `sliderMin`/`sliderMax`: an
operator narrows what a chart allows, never widens it. A slider's settings are found by
`x-onyxia.useRegionSliderConfig` (Onyxia's name for them: cpu, memory, disk, gpu), else by
its `sliderRangeId`. Values launched are checked against the result (`values.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from onyxia_py.quantities import SUFFIXES
from onyxia_py.settings import RegionSettings, SliderBounds

Schema = dict[str, Any]
Layer = Literal["role", "admin", "bundled"]

_KEYS: Final = (("min", "sliderMin"), ("max", "sliderMax"), ("step", "sliderStep"))


@dataclass(frozen=True)
class SliderPolicy:
    """The slider settings that apply to one user: their roles' (in sorted order) over the
    region's."""

    role: Mapping[str, tuple[SliderBounds, ...]] = field(default_factory=dict)
    region: Mapping[str, SliderBounds] = field(default_factory=dict)

    def sources(
        self, name: str | None
    ) -> tuple[tuple[SliderBounds, ...], tuple[SliderBounds, ...]]:
        """The role settings and the region setting of slider `name`, first wins."""
        if name is None:
            return ((), ())
        region = self.region.get(name)
        return (self.role.get(name, ()), (region,) if region is not None else ())

    def effective(self) -> dict[str, dict[str, Any]]:
        """Every configured slider as the context shows it (`region.sliders.<name>`)."""
        out: dict[str, dict[str, Any]] = {}
        for name in sorted({*self.region, *self.role}):
            roles, region = self.sources(name)
            sources = (*roles, *region)
            unit = next((s.unit for s in sources if s.unit is not None), None)
            entry: dict[str, Any] = {} if unit is None else {"sliderUnit": unit}
            for attr, key in _KEYS:
                value = _first(sources, attr, unit)
                if value is not None:
                    entry[key] = value
            out[name] = entry
        return out


def slider_policy(region: RegionSettings, roles: Iterable[str]) -> SliderPolicy:
    """The policy of a user with `roles`: per slider and bound, the first role (in sorted
    order) that sets it, then the region."""
    by_role: dict[str, list[SliderBounds]] = {}
    for role in sorted(set(roles)):
        for name, bounds in region.role_sliders.get(role, {}).items():
            by_role.setdefault(name, []).append(bounds)
    return SliderPolicy(
        role={name: tuple(found) for name, found in by_role.items()}, region=dict(region.sliders)
    )


def _first(sources: Iterable[SliderBounds], attr: str, unit: str | None) -> float | None:
    """The first of `sources` setting bound `attr`, in `unit` (a source without a unit of its
    own speaks in `unit`)."""
    for source in sources:
        own_unit = source.unit if source.unit is not None else unit
        value = _convert(getattr(source, attr), own_unit, unit)
        if value is not None:
            return value
    return None


def _convert(value: float | None, unit: str | None, target: str | None) -> float | None:
    """`value` in `unit` expressed in `target`; None when it cannot be converted."""
    if value is None or unit == target:
        return value
    if unit is None or target is None or unit not in SUFFIXES or target not in SUFFIXES:
        return None
    return _number(Decimal(str(value)) * SUFFIXES[unit] / SUFFIXES[target])


def _number(amount: Decimal) -> float:
    # Integers stay integers in the JSON the form shows (8000, not 8000.0).
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _unit(node: Mapping[str, Any] | None) -> str | None:
    unit = node.get("sliderUnit", "") if node is not None else None
    return unit if isinstance(unit, str) else None


def _bound(node: Mapping[str, Any] | None, key: str) -> float | None:
    value = node.get(key) if node is not None else None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _name(node: Mapping[str, Any] | None) -> str | None:
    if node is None:
        return None
    extension = node.get("x-onyxia")
    named = extension.get("useRegionSliderConfig") if isinstance(extension, Mapping) else None
    if isinstance(named, str):
        return named
    range_id = node.get("sliderRangeId")
    return range_id if isinstance(range_id, str) else None


def _is_slider(node: object) -> bool:
    return isinstance(node, Mapping) and node.get("render") == "slider"


def bounded(
    node: Schema, chart: Mapping[str, Any] | None, layer: Layer | None, policy: SliderPolicy
) -> Schema:
    """A copy of slider `node` with its bounds from the policy. `layer` says where `node`
    comes from (None: it is the chart's own, which is then also `chart`)."""
    if layer is None:
        chart = node
    unit = _unit(node)
    roles, region = policy.sources(_name(node) or _name(chart))
    out = dict(node)
    for attr, key in _KEYS:
        by_role, by_region = _first(roles, attr, unit), _first(region, attr, unit)
        own = _bound(node, key) if layer is not None else None
        from_chart = _convert(_bound(chart, key), _unit(chart), unit)
        order = {
            "role": (by_role, own, by_region, from_chart),
            "admin": (by_role, by_region, own, from_chart),
            "bundled": (by_role, by_region, from_chart, own),
            None: (by_role, by_region, from_chart),
        }[layer]
        chosen = next((value for value in order if value is not None), None)
        if chosen is not None:
            out[key] = chosen
    # The chart's own range is the outer limit, whoever set the bounds.
    low = _convert(_bound(chart, "sliderMin"), _unit(chart), unit)
    high = _convert(_bound(chart, "sliderMax"), _unit(chart), unit)
    if low is not None and _bound(out, "sliderMin") is not None:
        out["sliderMin"] = max(out["sliderMin"], low)
    if high is not None and _bound(out, "sliderMax") is not None:
        out["sliderMax"] = min(out["sliderMax"], high)
    if _bound(out, "sliderMin") is not None and _bound(out, "sliderMax") is not None:
        out["sliderMin"] = min(out["sliderMin"], out["sliderMax"])
    return out


def bounded_tree(node: object, chart: object, layer: Layer | None, policy: SliderPolicy) -> object:
    """`node` (a registry schema that replaced `chart`) with every slider down its
    properties bounded, each paired with the chart's node at the same place."""
    if not isinstance(node, dict):
        return node
    chart_node = chart if isinstance(chart, Mapping) else None
    out = bounded(node, chart_node, layer, policy) if _is_slider(node) else dict(node)
    properties = node.get("properties")
    if isinstance(properties, dict):
        chart_properties = chart_node.get("properties") if chart_node is not None else None
        theirs = chart_properties if isinstance(chart_properties, Mapping) else {}
        out["properties"] = {
            name: bounded_tree(sub, theirs.get(name), layer, policy)
            for name, sub in properties.items()
        }
    return out
