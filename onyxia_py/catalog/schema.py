"""The schema registry and schema resolution (`x-onyxia.overwriteSchemaWith`, registry `$ref`s).

Charts delegate parts of their `values.schema.json` to named schemas (`ide/resources.json`,
`nodeSelector.json`, ...). Operators override those names to cap resources or restrict GPU
types, globally or per role; the bundled ones are sane defaults. Lookup order for a key:
`admin/roles/<role>/<key>` (roles in sorted order), then `admin/<key>`, then the bundled file.
Slider bounds are then set from the operator's settings, within the chart's own (`sliders.py`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any, Final

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from onyxia_py.catalog.sliders import Layer, SliderPolicy, bounded, bounded_tree
from onyxia_py.errors import Invalid

log = logging.getLogger(__name__)

Schema = dict[str, Any]

# Real chart schemas nest about 10 levels; anything far deeper is a loop or an attack.
MAX_DEPTH: Final = 100

# Keywords whose value is a single subschema, a list of them, or a name -> subschema map.
_ONE: Final = (
    *("additionalProperties", "items", "additionalItems", "contains", "not"),
    *("if", "then", "else", "propertyNames"),
)
_MANY: Final = ("allOf", "anyOf", "oneOf", "items")
_NAMED: Final = ("properties", "patternProperties", "definitions", "$defs", "dependencies")


def bundled_schema_dir() -> Path:
    """The folder of the registry schemas shipped with onyxia-py."""
    return Path(__file__).parent / "schemas"


def _safe_key(key: str) -> bool:
    """Whether `key` is a relative path that stays inside the registry folder."""
    path = PurePosixPath(key)
    return bool(key) and not path.is_absolute() and ".." not in path.parts and "\\" not in key


class SchemaRegistry:
    """Named JSON schemas: bundled defaults, overridden by the operator, per role if wanted."""

    def __init__(self, bundled: Path, admin: Path | None = None) -> None:
        self._bundled = bundled
        self._admin = admin
        # None records a missing or malformed file, so each file is read (and logged) once.
        self._cache: dict[Path, Schema | None] = {}

    def _load(self, path: Path) -> Schema | None:
        if path in self._cache:
            return self._cache[path]
        loaded: Schema | None = None
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("the file does not hold a JSON object")
                Draft7Validator.check_schema(data)
                loaded = data
            except (OSError, ValueError, SchemaError) as exc:
                reason = exc.message if isinstance(exc, SchemaError) else str(exc)
                log.warning("registry schema %s skipped: %s", path, reason)
        self._cache[path] = loaded
        return loaded

    def _candidates(self, key: str, roles: Iterable[str]) -> list[tuple[Path, Layer]]:
        paths: list[tuple[Path, Layer]] = []
        if self._admin is not None:
            for role in sorted(set(roles)):
                if _safe_key(role) and "/" not in role:
                    paths.append((self._admin / "roles" / role / key, "role"))
            paths.append((self._admin / key, "admin"))
        paths.append((self._bundled / key, "bundled"))
        return paths

    def find(self, key: str, roles: Iterable[str] = ()) -> tuple[Schema, Layer] | None:
        """The schema named `key` for a user with `roles` and who wrote it (for a role, the
        operator, or bundled), or None if nobody defines it."""
        if not _safe_key(key):
            return None
        for path, layer in self._candidates(key, roles):
            found = self._load(path)
            if found is not None:
                # A copy, so callers can never alter what the next caller gets.
                return (copy.deepcopy(found), layer)
        return None

    def get(self, key: str, roles: Iterable[str] = ()) -> Schema | None:
        """The schema named `key` for a user with `roles`, or None if nobody defines it."""
        found = self.find(key, roles)
        return found[0] if found is not None else None

    def keys(self) -> list[str]:
        """Every key defined anywhere (bundled, admin default or for some role), sorted."""
        found: set[str] = set()
        for path in sorted(self._bundled.rglob("*.json")):
            found.add(path.relative_to(self._bundled).as_posix())
        if self._admin is not None and self._admin.is_dir():
            roles_dir = self._admin / "roles"
            for path in sorted(self._admin.rglob("*.json")):
                if path.is_relative_to(roles_dir):
                    # admin/roles/<role>/<key>
                    parts = path.relative_to(roles_dir).parts
                    if len(parts) > 1:
                        found.add(PurePosixPath(*parts[1:]).as_posix())
                else:
                    found.add(path.relative_to(self._admin).as_posix())
        return sorted(found)


def _registry_keys(node: Schema) -> list[str]:
    """The registry keys a node delegates to, the first one found wins."""
    keys: list[str] = []
    x_onyxia = node.get("x-onyxia")
    if isinstance(x_onyxia, dict) and isinstance(x_onyxia.get("overwriteSchemaWith"), str):
        keys.append(x_onyxia["overwriteSchemaWith"])
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        keys.append(ref)
    return keys


def _pointer(root: Schema, ref: str) -> object | None:
    """The node a local `#/a/b` reference points at in `root`, or None."""
    if ref != "#" and not ref.startswith("#/"):
        return None  # a named anchor, which charts do not use
    node: object = root
    for raw in ref[2:].split("/") if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


class _Resolver:
    def __init__(
        self,
        root: Schema,
        registry: SchemaRegistry,
        roles: tuple[str, ...],
        sliders: SliderPolicy,
        *,
        chart: bool = True,
    ) -> None:
        self.root = root
        self.registry = registry
        self.roles = roles
        self.sliders = sliders
        # False inside a registry schema: its sliders are bounded where it replaced the chart's.
        self.chart = chart

    def node(self, node: object, depth: int, expanding: frozenset[str]) -> object:
        if depth > MAX_DEPTH:
            raise Invalid("the chart's values schema is nested too deeply")
        if not isinstance(node, dict):
            return node
        for key in _registry_keys(node):
            found = None if key in expanding else self.registry.find(key, self.roles)
            if found is not None:
                replacement, layer = found
                # The replacement may delegate further; `expanding` stops a key re-entering itself.
                # Its own local refs point into itself, not into the chart's schema.
                inner = _Resolver(replacement, self.registry, self.roles, self.sliders, chart=False)
                resolved = inner.node(replacement, depth + 1, expanding | {key})
                if not self.chart:
                    return resolved
                # The chart's inline node, replaced, still bounds the sliders.
                return bounded_tree(resolved, node, layer, self.sliders)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#") and ref not in expanding:
            target = _pointer(self.root, ref)
            if isinstance(target, dict):
                # Inlined so the form walk sees the properties; a recursive ref stays a $ref.
                return self.node(copy.deepcopy(target), depth + 1, expanding | {ref})
        out = self.children(node, depth, expanding)
        if self.chart and out.get("render") == "slider":
            return bounded(out, None, None, self.sliders)
        return out

    def children(self, node: Schema, depth: int, expanding: frozenset[str]) -> Schema:
        out = dict(node)
        for word in _ONE:
            if isinstance(node.get(word), dict):
                out[word] = self.node(node[word], depth + 1, expanding)
        for word in _MANY:
            if isinstance(node.get(word), list):
                out[word] = [self.node(sub, depth + 1, expanding) for sub in node[word]]
        for word in _NAMED:
            if isinstance(node.get(word), dict):
                out[word] = {
                    name: self.node(sub, depth + 1, expanding) for name, sub in node[word].items()
                }
        return out


def resolve_schema(
    schema: Schema,
    registry: SchemaRegistry,
    roles: Iterable[str],
    sliders: SliderPolicy | None = None,
) -> Schema:
    """A copy of `schema` with registry delegations replaced by the schemas for these roles,
    and slider bounds set from `sliders` within the chart's own (see `sliders.py`)."""
    root = copy.deepcopy(schema)
    policy = sliders if sliders is not None else SliderPolicy()
    resolved = _Resolver(root, registry, tuple(roles), policy).node(root, 0, frozenset())
    assert isinstance(resolved, dict)
    return resolved
