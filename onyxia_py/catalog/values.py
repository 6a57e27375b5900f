"""Launch values: the form's defaults plus the user's overrides, enforced on the server.

What a user cannot change, whatever their client sends:
- a field with `const`, `readonly` (`x-onyxia.readonly`, `readonly` or `readOnly`) or
  `hidden: true` (`x-onyxia.hidden` or the legacy top-level spelling) keeps its computed default.
  Hidden fields are what the platform decides (hostnames, tolerations, network policies). A
  conditional `hidden: {value, path}` only hides in a UI and locks nothing;
- a key the resolved schema does not describe is refused, unless its object is free-form: it
  has no `properties`/`patternProperties`, or sets `additionalProperties` to true or to a
  schema. Declared properties with `additionalProperties` absent count as closed: Onyxia's own
  API would let such keys through, and that is how launch links bypass limits;
- JSON Schema: the merged values must pass the resolved schema (admin caps from the registry)
  and, separately, the chart's own schema;
- slider bounds (`sliderMin`/`sliderMax`/`sliderUnit`) on a changed value, Kubernetes quantities
  included ("8000m", "16Gi"), which plain JSON Schema cannot express for strings; and the lower
  end of a `sliderRangeId` pair (requests) may not exceed the upper end (limits).
Locks are checked field by field down objects; inside array elements only JSON Schema applies,
since elements have no stable computed default to compare with.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing.exceptions import Unresolvable

from onyxia_py.catalog.context import MISSING, Missing
from onyxia_py.catalog.form import LaunchForm
from onyxia_py.errors import FieldError, Invalid
from onyxia_py.quantities import SUFFIXES, quantity_or_none

Schema = dict[str, Any]

NOT_A_SETTING: Final = "not a setting of this chart"
FIXED: Final = "is fixed by the platform"
READ_ONLY: Final = "is read-only"


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override` on top: dicts merge recursively, lists and scalars replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _flag(node: Mapping[str, Any], *names: str) -> bool:
    extension = node.get("x-onyxia")
    extension = extension if isinstance(extension, Mapping) else {}
    return any(node.get(name) is True or extension.get(name) is True for name in names)


def _lock_reason(node: Mapping[str, Any]) -> str | None:
    if "const" in node or _flag(node, "hidden"):
        return FIXED
    if _flag(node, "readonly", "readOnly"):
        return READ_ONLY
    return None


def _child_schema(node: Mapping[str, Any], key: str) -> object | None:
    """The schema governing `key` inside object `node`; None if the key is not allowed."""
    properties = node.get("properties")
    if isinstance(properties, Mapping) and key in properties:
        found: object = properties[key]
        return found
    patterns = node.get("patternProperties")
    if isinstance(patterns, Mapping):
        for pattern, sub in patterns.items():
            try:
                hit = re.search(pattern, key) is not None
            except re.error:
                continue  # a broken pattern in the chart matches nothing
            if hit:
                matched: object = sub
                return matched
    extra = node.get("additionalProperties")
    if extra is True or isinstance(extra, Mapping):
        return extra
    free_form = not isinstance(properties, Mapping) and not isinstance(patterns, Mapping)
    return True if free_form and extra is None else None


def _check_overrides(
    node: object, override: object, default: object, path: str, errors: list[FieldError]
) -> None:
    """Refuse changes to locked fields and keys the schema does not describe."""
    if not isinstance(node, Mapping):
        return
    reason = _lock_reason(node)
    if reason is not None:
        expected = node.get("const", default)
        # A partial object that changes nothing (e.g. `{"enabled": true}`) is not a change.
        after = (
            merge(expected, override)
            if isinstance(expected, Mapping) and isinstance(override, Mapping)
            else override
        )
        if after != expected:
            errors.append(FieldError(path, reason))
        return
    if not isinstance(override, Mapping):
        return
    defaults: Mapping[str, Any] = default if isinstance(default, Mapping) else {}
    for key, value in override.items():
        sub = _child_schema(node, key)
        if sub is None:
            errors.append(FieldError(_join(path, key), NOT_A_SETTING))
        else:
            _check_overrides(sub, value, defaults.get(key, MISSING), _join(path, key), errors)


def _from_s3_context(node: Mapping[str, Any]) -> bool:
    """Whether a field's default is computed from the S3 context (`{{s3.*}}` or `s3.*`)."""
    source = node.get("x-onyxia")
    source = source.get("overwriteDefaultWith") if isinstance(source, Mapping) else None
    text = source if isinstance(source, str) else ""
    return text.strip().removeprefix("{{").lstrip().startswith("s3.")


def without_platform_values(schema: object, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` less what the platform decides itself, for clients that send every value of
    the form computed from their own context (the Onyxia web does): locked fields (hidden,
    `const`, read-only) and fields computed from the S3 context (credentials the platform
    mints and renews, for an endpoint its services reach). What is left are the user's
    choices, enforced as any override; the dropped fields get the platform's values."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        sub = _child_schema(schema, key) if isinstance(schema, Mapping) else True
        if isinstance(sub, Mapping) and (_lock_reason(sub) is not None or _from_s3_context(sub)):
            continue
        if isinstance(sub, Mapping) and isinstance(value, Mapping):
            kept[key] = without_platform_values(sub, value)
        else:
            kept[key] = value
    return kept


def _number_text(number: object) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


def _bound(node: Mapping[str, Any], name: str) -> int | float | None:
    bound = node.get(name)
    return bound if isinstance(bound, int | float) and not isinstance(bound, bool) else None


def _slider_nodes(
    node: object, keys: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Mapping[str, Any]]]:
    """Every slider field of a schema, with its keys (objects only, not array elements)."""
    if not isinstance(node, Mapping):
        return
    if node.get("render") == "slider":
        yield (keys, node)
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            yield from _slider_nodes(sub, (*keys, name))


def _at(values: object, keys: tuple[str, ...]) -> object | Missing:
    # Keys, not a dotted path: "nvidia.com/gpu" is one key.
    for key in keys:
        if not isinstance(values, Mapping) or key not in values:
            return MISSING
        values = values[key]
    return values


def _slider_errors(
    schema: Schema, values: Mapping[str, Any], defaults: Mapping[str, Any]
) -> list[FieldError]:
    errors: list[FieldError] = []
    ranges: dict[str, dict[str, tuple[str, Decimal, bool]]] = {}
    for keys, node in _slider_nodes(schema, ()):
        path = ".".join(keys)
        value = _at(values, keys)
        amount = quantity_or_none(value)
        if value is MISSING or amount is None:
            continue  # JSON Schema reports wrong types; nothing to compare here
        unit = node.get("sliderUnit", "")
        scale = SUFFIXES.get(unit) if isinstance(unit, str) else None
        changed = value != _at(defaults, keys)
        if scale is not None and changed:
            # Only a changed value: a platform default outside the slider must still launch.
            low, high = _bound(node, "sliderMin"), _bound(node, "sliderMax")
            if low is not None and amount < Decimal(str(low)) * scale:
                errors.append(FieldError(path, f"must be at least {_number_text(low)}{unit}"))
            if high is not None and amount > Decimal(str(high)) * scale:
                errors.append(FieldError(path, f"must be at most {_number_text(high)}{unit}"))
        range_id, end = node.get("sliderRangeId"), node.get("sliderExtremity")
        if isinstance(range_id, str) and end in ("down", "up"):
            ranges.setdefault(range_id, {})[str(end)] = (path, amount, changed)
    for ends in ranges.values():
        if "down" not in ends or "up" not in ends:
            continue
        (down_path, down, down_changed), (up_path, up, up_changed) = ends["down"], ends["up"]
        if (down_changed or up_changed) and down > up:
            errors.append(FieldError(down_path, f"must not exceed {up_path}"))
    return errors


def _enum_text(options: object) -> str:
    return repr(options) if isinstance(options, list) else str(options)


def _reasons(error: ValidationError) -> Iterator[tuple[str, str]]:
    """(field, human reason) pairs for one JSON Schema error."""
    path = ".".join(str(part) for part in error.absolute_path)
    word, expected = error.validator, error.validator_value
    instance = error.instance
    if word == "required" and isinstance(expected, list) and isinstance(instance, Mapping):
        for name in expected:
            if name not in instance:
                yield (_join(path, name), "is required")
        return
    if word == "additionalProperties" and isinstance(instance, Mapping):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        for key in instance:
            if _child_schema({**schema, "additionalProperties": False}, key) is None:
                yield (_join(path, key), NOT_A_SETTING)
        return
    kinds = expected if isinstance(expected, list) else [expected]
    simple = {
        "maximum": f"must be at most {expected}",
        "minimum": f"must be at least {expected}",
        "exclusiveMaximum": f"must be less than {expected}",
        "exclusiveMinimum": f"must be greater than {expected}",
        "multipleOf": f"must be a multiple of {expected}",
        "enum": f"must be one of {_enum_text(expected)}",
        "const": f"must be {expected!r}",
        "type": "must be of type " + " or ".join(str(kind) for kind in kinds),
        "pattern": f"must match the pattern {expected}",
        "minLength": f"must be at least {expected} characters long",
        "maxLength": f"must be at most {expected} characters long",
        "minItems": f"must have at least {expected} items",
        "maxItems": f"must have at most {expected} items",
        "uniqueItems": "must not contain duplicates",
        "minProperties": f"must have at least {expected} entries",
        "maxProperties": f"must have at most {expected} entries",
        "anyOf": "does not match any of the allowed forms",
        "oneOf": "must match exactly one of the allowed forms",
        "not": "is not allowed",
        "false": "is not allowed",
    }
    yield (path, simple.get(str(word), error.message))


def _without_remote_refs(node: object) -> object:
    """A schema copy where `$ref`s to other files accept anything: we never fetch them."""
    if isinstance(node, list):
        return [_without_remote_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        return {}
    return {key: _without_remote_refs(value) for key, value in node.items()}


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft7Validator:
    """A checked validator of a schema (by its JSON, in its own key order, so errors come in
    the schema's order): a chart's schema is checked once, not at every launch. Raises
    SchemaError."""
    schema = json.loads(schema_json)
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def _schema_errors(schema: Schema, values: Mapping[str, Any], what: str) -> list[FieldError]:
    cleaned = _without_remote_refs(schema)
    assert isinstance(cleaned, dict)
    try:
        validator = _validator(json.dumps(cleaned, default=str))
        found = list(validator.iter_errors(values))
    except (SchemaError, Unresolvable) as exc:
        # The catalogue's fault, not the user's; but launching unchecked would void the limits.
        raise Invalid(f"{what} is not a usable JSON Schema: {exc}") from exc
    pairs = [pair for error in found for pair in _reasons(error)]
    return [FieldError(field, reason) for field, reason in pairs]


def launch_values(
    form: LaunchForm, overrides: Mapping[str, Any], *, chart_schema: Schema | None
) -> dict[str, Any]:
    """The values to install with: the form's defaults, the user's overrides, all enforced."""
    values = merge(form.defaults, overrides)
    errors: list[FieldError] = []
    if form.schema is not None and not form.raw_values:
        _check_overrides(form.schema, overrides, form.defaults, "", errors)
        errors += _schema_errors(form.schema, values, "the chart's resolved schema")
        errors += _slider_errors(form.schema, values, form.defaults)
    if chart_schema is not None:
        errors += _schema_errors(chart_schema, values, "the chart's values.schema.json")
    unique = list(dict.fromkeys(errors))
    if unique:
        raise Invalid("the launch values are not valid", unique)
    return values
