"""A launch form's resolved schema turned into the fields a page renders (pure, no I/O).

The launch-form API gives a JSON Schema whose defaults the server computed; this walks it once
and decides, per node, how a person edits it: a section for an object with properties, a
checkbox, a select for `enum` (or `render: list` with `listEnum`), a slider (`render: slider`),
one range for a `sliderRangeId` pair (requests and limits shown together), a password with
reveal, a text area, or a YAML editor for free objects and lists. Nodes marked hidden are left
out (their computed default still applies); read-only and `const` ones are shown, not editable.
`hidden: {path, value}` becomes a rule the page's script applies as the user types.

Each field carries its path (keys, since a key may contain dots or slashes), the value to show
(a saved configuration's, else the default) and the default: the page sends only what differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import yaml

from onyxia_py.quantities import SUFFIXES, quantity_or_none

Kind = Literal[
    "group",
    "checkbox",
    "select",
    "text",
    "password",
    "textarea",
    "number",
    "slider",
    "range",
    "yaml",
]
Path = tuple[str, ...]
_MISSING: Any = object()
GPU_KEY = "nvidia.com/gpu"
GPU_PRODUCT_KEY = "nvidia.com/gpu.product"


class _Dumper(yaml.SafeDumper):
    """Block style throughout; multi-line strings as literal blocks (readable, and what the
    page's YAML reader expects)."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(value: Any) -> str:
    """`value` as block YAML, keys in their order."""
    dumped: str = yaml.dump(
        value, Dumper=_Dumper, default_flow_style=False, sort_keys=False, allow_unicode=True
    )
    return dumped


@dataclass(frozen=True)
class Option:
    """One choice of a select: its label and its JSON-encoded value."""

    label: str
    value: str
    selected: bool


@dataclass(frozen=True)
class Slider:
    """A slider's scale: numbers in `unit`, written back as `<number><unit>` for strings."""

    minimum: str
    maximum: str
    step: str
    unit: str
    number: str
    default_number: str
    semantic: str


@dataclass(frozen=True)
class HiddenWhen:
    """Hide the field while the field at `path` (slash-separated) holds `value`."""

    path: str
    value: str


@dataclass(frozen=True)
class Field:
    """One thing to render: an input, a range (two sliders), or a group of fields."""

    kind: Kind
    path: Path
    title: str
    description: str = ""
    json_type: str = "string"
    value: Any = None
    default: Any = None
    readonly: bool = False
    options: tuple[Option, ...] = ()
    suggestions: tuple[str, ...] = ()
    slider: Slider | None = None
    hidden_when: HiddenWhen | None = None
    children: tuple[Field, ...] = ()
    gpu: Literal["", "count", "product"] = ""
    at_launch: bool = False  # empty here, filled by the platform at launch (S3 credentials)

    @property
    def dom_id(self) -> str:
        """A stable element id derived from the path."""
        return "f-" + "--".join(re.sub(r"[^A-Za-z0-9_-]", "_", key) for key in self.path)

    @property
    def quota_key(self) -> str:
        """The ResourceQuota key this field's amount counts against ("" if none): the requests
        and limits of CPU, memory and GPUs (a GPU limit is its request)."""
        if len(self.path) < 2 or self.path[-2] not in ("requests", "limits"):
            return ""
        section, name = self.path[-2], self.path[-1]
        if name == "nvidia.com/gpu":
            return "requests.nvidia.com/gpu"
        return f"{section}.{name}" if name in ("cpu", "memory") else ""

    @property
    def path_json(self) -> str:
        """The path as JSON, for the page's script."""
        return json.dumps(list(self.path))

    @property
    def error_key(self) -> str:
        """How the server names this field in its field errors (keys joined with dots)."""
        return ".".join(self.path)

    @property
    def default_json(self) -> str:
        """The default as JSON, so the script can tell what the user changed."""
        return json.dumps(self.default, sort_keys=True)

    @property
    def text(self) -> str:
        """The value as its input shows it."""
        return self._as_text(self.value)

    @property
    def default_text(self) -> str:
        """The default as its input would show it (for "restore defaults")."""
        return self._as_text(self.default)

    def _as_text(self, value: Any) -> str:
        if self.kind == "yaml":
            if value is None:
                return ""
            return json.dumps(value) if value in ({}, []) else to_yaml(value)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        return json.dumps(value)

    @property
    def rows(self) -> int:
        """Lines a text box shows: its text's, between 3 and 12."""
        return min(12, max(3, self.text.count("\n") + 1))

    @property
    def checked(self) -> bool:
        """For checkboxes."""
        return self.value is True

    @property
    def ends(self) -> tuple[Field, Field]:
        """For ranges: the lower (guaranteed) and upper (maximum) slider."""
        assert self.kind == "range"
        assert len(self.children) == 2
        return self.children[0], self.children[1]


@dataclass
class _Walk:
    values: Mapping[str, Any]
    pairs: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = field(default_factory=dict)
    emitted_ranges: set[str] = field(default_factory=set)


def _x(node: Mapping[str, Any]) -> Mapping[str, Any]:
    extension = node.get("x-onyxia")
    return extension if isinstance(extension, Mapping) else {}


def _flag(node: Mapping[str, Any], *names: str) -> bool:
    return any(node.get(n) is True or _x(node).get(n) is True for n in names)


def _type(node: Mapping[str, Any]) -> str:
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    if isinstance(declared, str):
        return declared
    if isinstance(node.get("properties"), Mapping):
        return "object"
    return "string"


def _at(values: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(values, Mapping) or key not in values:
            return _MISSING
        values = values[key]
    return values


def _number_text(amount: Decimal) -> str:
    text = format(amount.normalize(), "f")
    return text


def _on_scale(value: Any, unit: str) -> Decimal | None:
    """`value` as a number of `unit`s, or None if it is not a quantity."""
    amount: Decimal | None
    if isinstance(value, bool) or value is None:
        return None
    if unit in SUFFIXES:
        quantity = quantity_or_none(value)
        amount = quantity / SUFFIXES[unit] if quantity is not None else None
    else:
        # A unit Kubernetes does not know ("cores", "%"): the number in front of it.
        text = str(value).removesuffix(unit) if isinstance(value, str) else str(value)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
    return amount


def _slider(node: Mapping[str, Any], value: Any) -> Slider | None:
    """The slider of `node` showing `value`, or None if the value cannot sit on the scale."""
    unit = node.get("sliderUnit", "")
    unit = unit if isinstance(unit, str) else ""
    amount = _on_scale(value, unit)
    if amount is None:
        return None
    default = _on_scale(node.get("default"), unit)

    def bound(name: str, fallback: str) -> str:
        raw = node.get(name)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            return fallback
        try:
            return _number_text(Decimal(str(raw)))
        except InvalidOperation:
            return fallback

    return Slider(
        minimum=bound("sliderMin", "0"),
        maximum=bound("sliderMax", "100"),
        step=bound("sliderStep", "1"),
        unit=unit,
        number=_number_text(amount),
        default_number=_number_text(default if default is not None else amount),
        semantic=str(node.get("sliderExtremitySemantic") or ""),
    )


def _find_pairs(node: Any, path: Path, walk: _Walk) -> None:
    if not isinstance(node, Mapping) or _flag(node, "hidden"):
        return
    range_id, end = node.get("sliderRangeId"), node.get("sliderExtremity")
    if node.get("render") == "slider" and isinstance(range_id, str) and end in ("down", "up"):
        walk.pairs.setdefault(range_id, {})[str(end)] = (path, dict(node))
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for key, sub in properties.items():
            _find_pairs(sub, (*path, str(key)), walk)


def _hidden_when(node: Mapping[str, Any]) -> HiddenWhen | None:
    rule = node.get("hidden")
    if isinstance(rule, Mapping) and isinstance(rule.get("path"), str):
        return HiddenWhen(path=rule["path"], value=json.dumps(rule.get("value")))
    return None


def _options(choices: list[Any], value: Any) -> tuple[Option, ...]:
    options = [
        Option(
            label=str(c) if c is not None else "(none)", value=json.dumps(c), selected=c == value
        )
        for c in choices
    ]
    if value is not None and value not in choices:
        options.insert(0, Option(label=str(value), value=json.dumps(value), selected=True))
    return tuple(options)


def _gpu(path: Path) -> Literal["", "count", "product"]:
    if path and path[-1] == GPU_KEY:
        return "count"
    if path and path[-1] == GPU_PRODUCT_KEY:
        return "product"
    return ""


# Context values only a launch has: S3 credentials are minted for the service being launched.
_LAUNCH_ONLY = re.compile(r"\{\{\s*s3\.|^s3\.")


def _filled_at_launch(node: Mapping[str, Any], value: Any) -> bool:
    """An empty field the platform fills when the service launches (not in the form)."""
    expression = _x(node).get("overwriteDefaultWith")
    return (
        value in ("", None)
        and isinstance(expression, str)
        and bool(_LAUNCH_ONLY.search(expression))
    )


def _leaf(node: Mapping[str, Any], path: Path, walk: _Walk) -> Field | None:
    default = node.get("default")
    value = _at(walk.values, path)
    value = default if value is _MISSING else value
    json_type = _type(node)
    base: dict[str, Any] = {
        "path": path,
        "title": str(node.get("title") or path[-1]),
        "description": str(node.get("description") or ""),
        "json_type": json_type,
        "value": value,
        "default": default,
        "readonly": "const" in node or _flag(node, "readonly", "readOnly"),
        "hidden_when": _hidden_when(node),
        "gpu": _gpu(path),
        "at_launch": _filled_at_launch(node, value),
    }
    render = node.get("render")
    enum, list_enum = node.get("enum"), node.get("listEnum")
    if json_type == "boolean":
        return Field(kind="checkbox", **base)
    if isinstance(enum, list) and enum:
        return Field(kind="select", options=_options(enum, value), **base)
    if render == "list" and isinstance(list_enum, list) and list_enum:
        return Field(kind="select", options=_options(list_enum, value), **base)
    if render == "slider":
        slider = _slider(node, value)
        if slider is not None:
            return Field(kind="slider", slider=slider, **base)
    suggestions = tuple(str(s) for s in list_enum) if isinstance(list_enum, list) else ()
    if json_type in ("object", "array"):
        return Field(kind="yaml", **base)
    if json_type in ("integer", "number"):
        return Field(kind="number", **base)
    if render == "password":
        return Field(kind="password", **base)
    if render == "textArea":
        return Field(kind="textarea", suggestions=suggestions, **base)
    return Field(kind="text", suggestions=suggestions, **base)


def _range(range_id: str, walk: _Walk) -> Field | None:
    ends = walk.pairs.get(range_id, {})
    if "down" not in ends or "up" not in ends or range_id in walk.emitted_ranges:
        return None
    sliders = []
    for end in ("down", "up"):
        path, node = ends[end]
        leaf = _leaf(node, path, walk)
        if leaf is None or leaf.kind != "slider":
            return None
        sliders.append(leaf)
    walk.emitted_ranges.add(range_id)
    low, high = sliders
    return Field(
        kind="range",
        path=low.path,
        title=low.title,
        description=str(ends["down"][1].get("description") or ""),
        readonly=low.readonly and high.readonly,
        hidden_when=low.hidden_when,
        children=(low, high),
    )


def _children(node: Mapping[str, Any], path: Path, walk: _Walk) -> Iterator[Field]:
    properties = node.get("properties")
    if not isinstance(properties, Mapping):
        return
    for key, sub in properties.items():
        yield from _node(sub, (*path, str(key)), walk)


def _spans_out(f: Field, path: Path) -> bool:
    """True for a range with an end outside `path` (requests.cpu shown with limits.cpu)."""
    return f.kind == "range" and any(end.path[: len(path)] != path for end in f.ends)


def _node(node: Any, path: Path, walk: _Walk) -> list[Field]:
    if not isinstance(node, Mapping) or _flag(node, "hidden"):
        return []
    if isinstance(node.get("properties"), Mapping):
        children = tuple(_children(node, path, walk))
        if children and all(_spans_out(c, path) for c in children):
            # A group left with only ranges gathered from elsewhere (`requests`, once the
            # `limits` joined them) would mislabel them: they go up to the parent.
            return list(children)
        if not children:
            return []
        return [
            Field(
                kind="group",
                path=path,
                title=str(node.get("title") or path[-1]),
                description=str(node.get("description") or ""),
                json_type="object",
                hidden_when=_hidden_when(node),
                readonly=_flag(node, "readonly", "readOnly"),
                children=children,
            )
        ]
    range_id = node.get("sliderRangeId")
    if node.get("render") == "slider" and isinstance(range_id, str):
        pair = walk.pairs.get(range_id, {})
        if "down" in pair and "up" in pair:
            # Both ends render as one range, where the first of them appears.
            built = _range(range_id, walk)
            return [built] if built else []
    leaf = _leaf(node, path, walk)
    return [leaf] if leaf else []


def form_fields(schema: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> list[Field]:
    """The top-level fields of a launch form; `values` (a saved configuration's changes) are
    shown instead of the defaults where given."""
    walk = _Walk(values=values or {})
    _find_pairs(schema, (), walk)
    return list(_children(schema, (), walk))


def flatten(fields: list[Field]) -> Iterator[Field]:
    """Every field, groups and ranges opened, depth first."""
    for f in fields:
        yield f
        yield from flatten(list(f.children))
