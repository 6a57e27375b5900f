"""The launch form: a chart's resolved schema with every default computed on the server.

For each node the default is, in order: `const`, then (objects with `properties`) the defaults
of its properties, then `x-onyxia.overwriteDefaultWith` resolved against the onyxia context,
then the schema `default`, then the chart's `values.yaml` value at that path. Keys of
`values.yaml` that the schema does not describe are kept underneath (unless the object sets
`additionalProperties: false`), so `defaults` is exactly what an unchanged launch installs.

`x-onyxia.overwriteListEnumWith` replaces `listEnum` (the suggestions of a select) and nothing
else: a chart's `enum` is a hard rule and an operator narrows it with a registry schema, not with
context data. Presentation hints (`render`, `slider*`, `hidden`, `readonly`, `x-onyxia`) pass
through untouched; a slider's default is brought within its bounds.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from onyxia_py.catalog.context import MISSING, Missing, lookup
from onyxia_py.quantities import SUFFIXES, quantity_or_none

Schema = dict[str, Any]

# `{{ path }}`: one interpolation in a template.
_MUSTACHE: Final = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True)
class LaunchForm:
    """What to show a user before launch: the schema with computed defaults, and those defaults."""

    schema: Schema | None
    defaults: dict[str, Any]
    raw_values: bool


def _x_onyxia(node: Mapping[str, Any]) -> Mapping[str, Any]:
    extension = node.get("x-onyxia")
    return extension if isinstance(extension, Mapping) else {}


def _scalar_text(value: object) -> str | None:
    """How a scalar reads inside a template (as JavaScript would print it), else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _resolve_text(text: str, context: Mapping[str, Any], *, bare_path: bool) -> object | Missing:
    whole = _MUSTACHE.fullmatch(text.strip())
    if whole is not None:
        # A lone `{{path}}` keeps the native type: a bool stays a bool, a list a list.
        return copy.deepcopy(lookup(context, whole.group(1)))
    if "{{" in text:
        parts: list[str] = []
        pos = 0
        for match in _MUSTACHE.finditer(text):
            rendered = _scalar_text(lookup(context, match.group(1)))
            if rendered is None:
                # One undefined (or non-scalar) part drops the whole value.
                return MISSING
            parts += [text[pos : match.start()], rendered]
            pos = match.end()
        return "".join([*parts, text[pos:]])
    if bare_path:
        return copy.deepcopy(lookup(context, text))
    return text


def _resolve_leaves(value: object, context: Mapping[str, Any]) -> object | Missing:
    """A literal whose string leaves with `{{...}}` are resolved; MISSING if one is undefined."""
    if isinstance(value, str):
        # Inside a literal, plain strings are text ("/", "Prefix"), not paths.
        return _resolve_text(value, context, bare_path=False)
    if isinstance(value, list):
        items = [_resolve_leaves(item, context) for item in value]
        return MISSING if any(item is MISSING for item in items) else items
    if isinstance(value, dict):
        entries = {key: _resolve_leaves(item, context) for key, item in value.items()}
        return MISSING if any(item is MISSING for item in entries.values()) else entries
    return value


def resolve_expression(expression: object, context: Mapping[str, Any]) -> object | Missing:
    """The value an `overwriteDefaultWith`/`overwriteListEnumWith` expression stands for."""
    if isinstance(expression, str):
        return _resolve_text(expression, context, bare_path=True)
    return _resolve_leaves(expression, context)


def _types(node: Mapping[str, Any]) -> list[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return [declared]
    return [t for t in declared if isinstance(t, str)] if isinstance(declared, list) else []


def _fits(value: object, kind: str) -> bool:
    checks: dict[str, bool] = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "null": value is None,
    }
    return checks.get(kind, True)


def _coerce(value: object, node: Mapping[str, Any]) -> object | Missing:
    """`value` made to fit the node's type where the intent is obvious, else MISSING."""
    kinds = _types(node)
    if kinds and not any(_fits(value, kind) for kind in kinds):
        text = _scalar_text(value)
        if "string" in kinds and text is not None:
            value = text
        elif "boolean" in kinds and value in ("true", "false"):
            value = value == "true"
        elif "integer" in kinds and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
            value = int(value)
        elif "number" in kinds and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return MISSING
        else:
            return MISSING
    enum = node.get("enum")
    if isinstance(enum, list) and value not in enum:
        return MISSING
    return value


def _within_slider(value: object, node: Mapping[str, Any]) -> object:
    """A slider's default brought within its bounds (the operator's may be narrower than the
    default), in the slider's unit; anything that is not a quantity in a known unit as is."""
    amount, unit = quantity_or_none(value), node.get("sliderUnit", "")
    scale = SUFFIXES.get(unit) if isinstance(unit, str) else None
    if amount is None or scale is None or (not isinstance(value, str) and unit != ""):
        return value  # a bare number next to a unit is not a quantity we can compare
    for name, below in (("sliderMin", True), ("sliderMax", False)):
        bound = node.get(name)
        if not isinstance(bound, int | float) or isinstance(bound, bool):
            continue
        limit = Decimal(str(bound)) * scale
        if (amount < limit) if below else (amount > limit):
            return f"{_scalar_text(bound)}{unit}" if isinstance(value, str) else bound
    return value


def _is_object_list(node: Mapping[str, Any]) -> bool:
    items = node.get("items")
    return isinstance(items, dict) and isinstance(items.get("properties"), dict)


def _map_array(node: Mapping[str, Any], elements: list[Any]) -> list[Any]:
    """Each context element run through `items.properties`, whose expressions are relative."""
    items: Schema = node["items"]
    mapped: list[Any] = []
    for element in elements:
        entry: dict[str, Any] = {}
        for name, sub in items["properties"].items():
            if not isinstance(sub, dict):
                continue
            if "overwriteDefaultWith" not in _x_onyxia(sub):
                # A property with no expression of its own takes the element's same-named key.
                sub = {**sub, "x-onyxia": {**_x_onyxia(sub), "overwriteDefaultWith": name}}
            value, _ = _walk(sub, MISSING, element)
            if value is not MISSING:
                entry[name] = value
        mapped.append(entry)
    return mapped


def _expression_default(node: Mapping[str, Any], context: Mapping[str, Any]) -> object | Missing:
    extension = _x_onyxia(node)
    if "overwriteDefaultWith" not in extension:
        return MISSING
    value = resolve_expression(extension["overwriteDefaultWith"], context)
    if value is MISSING:
        return MISSING
    objects = isinstance(value, list) and all(isinstance(item, dict) for item in value)
    if objects and isinstance(value, list) and _is_object_list(node):
        return _map_array(node, value)
    return _coerce(value, node)


def _walk(node: object, yaml: object, context: Mapping[str, Any]) -> tuple[object, object]:
    """The default of `node` and the node with that default (and resolved enums) written in."""
    if not isinstance(node, dict):
        # A boolean schema describes nothing: values.yaml decides.
        return (copy.deepcopy(yaml), node)
    out = dict(node)
    extension = _x_onyxia(node)
    if "overwriteListEnumWith" in extension:
        options = resolve_expression(extension["overwriteListEnumWith"], context)
        if isinstance(options, list):
            out["listEnum"] = options
    properties = node.get("properties")
    if isinstance(properties, dict):
        out["properties"] = dict(properties)
    if isinstance(node.get("items"), dict):
        # Item defaults are for a UI adding an element; the array's own default is computed below.
        out["items"] = _walk(node["items"], MISSING, context)[1]

    value: object | Missing
    if "const" in node:
        value = copy.deepcopy(node["const"])
    elif isinstance(properties, dict):
        value = _object_default(node, out, yaml, context)
    else:
        value = _expression_default(node, context)
        if value is MISSING and "default" in node:
            value = copy.deepcopy(node["default"])
        if value is MISSING:
            value = copy.deepcopy(yaml)
        if node.get("render") == "slider":
            value = _within_slider(value, node)
    if value is not MISSING:
        out["default"] = copy.deepcopy(value)
    return (value, out)


def _object_default(
    node: Mapping[str, Any], out: Schema, yaml: object, context: Mapping[str, Any]
) -> dict[str, Any]:
    value: dict[str, Any] = {}
    yaml_map: Mapping[str, Any] = yaml if isinstance(yaml, dict) else {}
    properties: Mapping[str, Any] = node["properties"]
    if node.get("additionalProperties") is not False:
        value = {k: copy.deepcopy(v) for k, v in yaml_map.items() if k not in properties}
    for name, sub in properties.items():
        child, out["properties"][name] = _walk(sub, yaml_map.get(name, MISSING), context)
        if child is not MISSING:
            value[name] = child
    return value


def launch_form(
    schema: Schema | None, chart_values: dict[str, Any], context: Mapping[str, Any]
) -> LaunchForm:
    """The launch form of a chart whose schema is already resolved (see `resolve_schema`)."""
    if schema is None:
        return LaunchForm(None, copy.deepcopy(chart_values), raw_values=True)
    value, annotated = _walk(schema, chart_values, context)
    assert isinstance(annotated, dict)
    defaults = value if isinstance(value, dict) else copy.deepcopy(chart_values)
    return LaunchForm(annotated, defaults, raw_values=False)


IMAGE_PATH: Final = ("service", "image", "version")


def with_image(form: LaunchForm, image: str) -> LaunchForm:
    """The form with the operator's image for this chart (at `service.image.version`, the
    Onyxia charts' convention) as its default, and first among the suggestions."""
    defaults = copy.deepcopy(form.defaults)
    node: dict[str, Any] = defaults
    for key in IMAGE_PATH[:-1]:
        child = node.get(key)
        node[key] = child = child if isinstance(child, dict) else {}
        node = child
    node[IMAGE_PATH[-1]] = image
    schema = copy.deepcopy(form.schema) if form.schema is not None else None
    field: object = schema
    for key in IMAGE_PATH:
        properties = field.get("properties") if isinstance(field, dict) else None
        field = properties.get(key) if isinstance(properties, dict) else None
    if isinstance(field, dict):
        field["default"] = image
        if isinstance(field.get("listEnum"), list):
            field["listEnum"] = [image, *(x for x in field["listEnum"] if x != image)]
    return LaunchForm(schema, defaults, form.raw_values)
