"""The schema registry (bundled, operator, per role) and schema resolution."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir, resolve_schema
from onyxia_py.errors import Invalid

from .conftest import write_json

CPU_4 = {"type": "string", "title": "admin 4 CPU"}


def test_bundled_schemas_are_valid_draft7() -> None:
    registry = SchemaRegistry(bundled_schema_dir())
    keys = registry.keys()
    for key in [
        "ide/resources.json",
        "ide/resources-gpu.json",
        "nodeSelector.json",
        "nodeSelector-gpu.json",
        "tolerations.json",
        "network-policy.json",
        "ide/persistence.json",
        "ide/role.json",
        "ide/password.json",
        "ide/ingress.json",
    ]:
        assert key in keys
        schema = registry.get(key)
        assert schema is not None
        Draft7Validator.check_schema(schema)


def test_bundled_resources_pair_requests_and_limits() -> None:
    schema = SchemaRegistry(bundled_schema_dir()).get("ide/resources.json")
    assert schema is not None
    request = schema["properties"]["requests"]["properties"]["cpu"]
    limit = schema["properties"]["limits"]["properties"]["cpu"]
    assert (request["sliderExtremity"], limit["sliderExtremity"]) == ("down", "up")
    assert request["sliderRangeId"] == limit["sliderRangeId"] == "cpu"
    assert limit["sliderMax"] == 8000
    gpu = SchemaRegistry(bundled_schema_dir()).get("ide/resources-gpu.json")
    assert gpu is not None
    assert gpu["properties"]["limits"]["properties"]["nvidia.com/gpu"]["default"] == "1"


def test_admin_default_wins_over_bundled(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir / "ide/resources.json", CPU_4)
    assert registry.get("ide/resources.json") == CPU_4
    assert registry.get("ide/resources.json", ["unrelated-role"]) == CPU_4


def test_first_role_in_sorted_order_wins(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir / "ide/resources.json", {"title": "default"})
    write_json(admin_dir / "roles/beta/ide/resources.json", {"title": "beta"})
    write_json(admin_dir / "roles/zeta/ide/resources.json", {"title": "zeta"})
    assert registry.get("ide/resources.json", ["zeta", "beta"]) == {"title": "beta"}
    assert registry.get("ide/resources.json", ["zeta", "alpha"]) == {"title": "zeta"}
    assert registry.get("ide/resources.json", ["alpha"]) == {"title": "default"}


def test_unknown_key_and_unsafe_keys_give_none(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir.parent / "secret.json", {"title": "outside"})
    assert registry.get("nope.json") is None
    assert registry.get("../secret.json") is None
    assert registry.get("/etc/passwd") is None
    write_json(admin_dir.parent / "x/ide/resources.json", {"title": "outside"})
    assert registry.get("ide/resources.json", ["../../x"]) != {"title": "outside"}


def test_malformed_files_are_skipped_with_a_log_line(
    admin_dir: Path, registry: SchemaRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    (admin_dir / "roles/alpha").mkdir(parents=True)
    (admin_dir / "roles/alpha/nodeSelector.json").write_text("{not json", encoding="utf-8")
    write_json(admin_dir / "nodeSelector.json", {"type": 12})  # JSON, but not a schema
    write_json(admin_dir / "tolerations.json", ["a list"])
    with caplog.at_level(logging.WARNING, logger="onyxia_py.catalog.schema"):
        node_selector = registry.get("nodeSelector.json", ["alpha"])
        tolerations = registry.get("tolerations.json")
        registry.get("nodeSelector.json", ["alpha"])
    bundled = SchemaRegistry(bundled_schema_dir())
    assert node_selector == bundled.get("nodeSelector.json")
    assert tolerations == bundled.get("tolerations.json")
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3  # each bad file logged once, even when asked twice


def test_get_returns_a_copy(registry: SchemaRegistry) -> None:
    first = registry.get("nodeSelector.json")
    assert first is not None
    first["title"] = "changed"
    assert registry.get("nodeSelector.json") != first


def test_keys_cover_every_level(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir / "site/extra.json", {})
    write_json(admin_dir / "roles/gpu/ide/only-for-gpu.json", {})
    keys = registry.keys()
    assert {"site/extra.json", "ide/only-for-gpu.json", "ide/resources.json"} <= set(keys)
    assert keys == sorted(keys)
    assert not any(key.startswith("roles/") for key in keys)


def test_overwrite_schema_with_replaces_the_node(
    admin_dir: Path, registry: SchemaRegistry, jupyter_schema: dict[str, Any]
) -> None:
    write_json(admin_dir / "roles/gpu-users/ide/resources.json", CPU_4)
    original = json.dumps(jupyter_schema, sort_keys=True)
    resolved = resolve_schema(jupyter_schema, registry, ["gpu-users"])
    assert resolved["properties"]["resources"] == CPU_4
    assert resolved["properties"]["tolerations"] == registry.get("tolerations.json")
    password = resolved["properties"]["security"]["properties"]["password"]
    assert password == registry.get("ide/password.json")
    # Untouched parts are equal, and the input is not modified.
    assert resolved["properties"]["env"] == jupyter_schema["properties"]["env"]
    assert json.dumps(jupyter_schema, sort_keys=True) == original


def test_roles_choose_the_replacement(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir / "roles/gpu-users/ide/resources.json", CPU_4)
    schema = {"type": "object", "x-onyxia": {"overwriteSchemaWith": "ide/resources.json"}}
    assert resolve_schema(schema, registry, ["gpu-users"]) == CPU_4
    assert resolve_schema(schema, registry, []) == registry.get("ide/resources.json")


def test_unknown_key_keeps_the_inline_node(registry: SchemaRegistry) -> None:
    inline = {
        "type": "object",
        "x-onyxia": {"overwriteSchemaWith": "ide/networking.json"},
        "properties": {"type": {"type": "string", "default": "ClusterIP"}},
    }
    schema = {"type": "object", "properties": {"networking": inline}}
    assert resolve_schema(schema, registry, [])["properties"]["networking"] == inline


def test_registry_refs_are_replaced_everywhere(registry: SchemaRegistry) -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "nodeSelector.json"},
            "b": {"type": "array", "items": {"$ref": "nodeSelector.json"}},
            "c": {"anyOf": [{"$ref": "nodeSelector.json"}, {"type": "null"}]},
            "d": {"type": "object", "additionalProperties": {"$ref": "nodeSelector.json"}},
            "e": {"$ref": "unknown.json"},
        },
        "definitions": {"x": {"$ref": "nodeSelector.json"}},
    }
    expected = registry.get("nodeSelector.json")
    resolved = resolve_schema(schema, registry, [])
    props = resolved["properties"]
    assert props["a"] == expected
    assert props["b"]["items"] == expected
    assert props["c"]["anyOf"][0] == expected
    assert props["d"]["additionalProperties"] == expected
    assert props["e"] == {"$ref": "unknown.json"}
    assert resolved["definitions"]["x"] == expected


def test_local_refs_are_inlined(registry: SchemaRegistry) -> None:
    schema = {
        "type": "object",
        "definitions": {
            "port": {"type": "integer", "maximum": 65535},
            "node": {"type": "object", "properties": {"child": {"$ref": "#/definitions/node"}}},
        },
        "properties": {
            "port": {"$ref": "#/definitions/port"},
            "tree": {"$ref": "#/definitions/node"},
        },
    }
    resolved = resolve_schema(schema, registry, [])
    assert resolved["properties"]["port"] == {"type": "integer", "maximum": 65535}
    # A recursive definition is expanded once, then left as a reference.
    tree = resolved["properties"]["tree"]
    assert tree["properties"]["child"] == {"$ref": "#/definitions/node"}


def test_registry_cycles_terminate(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(
        admin_dir / "loop-a.json",
        {
            "type": "object",
            "properties": {"b": {"x-onyxia": {"overwriteSchemaWith": "loop-b.json"}}},
        },
    )
    write_json(
        admin_dir / "loop-b.json",
        {
            "type": "object",
            "properties": {"a": {"x-onyxia": {"overwriteSchemaWith": "loop-a.json"}}},
        },
    )
    schema = {"type": "object", "properties": {"root": {"$ref": "loop-a.json"}}}
    resolved = resolve_schema(schema, registry, [])
    inner = resolved["properties"]["root"]["properties"]["b"]["properties"]["a"]
    assert inner == {"x-onyxia": {"overwriteSchemaWith": "loop-a.json"}}


def test_absurdly_deep_schemas_are_refused(registry: SchemaRegistry) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(150):
        schema = {"type": "object", "properties": {"x": schema}}
    with pytest.raises(Invalid):
        resolve_schema(schema, registry, [])


def test_a_ref_is_tried_when_the_overwrite_key_is_unknown(registry: SchemaRegistry) -> None:
    node = {"$ref": "nodeSelector.json", "x-onyxia": {"overwriteSchemaWith": "nope.json"}}
    assert resolve_schema(node, registry, []) == registry.get("nodeSelector.json")


def test_escaped_pointers_and_anchors(registry: SchemaRegistry) -> None:
    schema = {
        "definitions": {"a/b": {"type": "integer"}},
        "properties": {"x": {"$ref": "#/definitions/a~1b"}, "y": {"$ref": "#anchor"}},
    }
    resolved = resolve_schema(schema, registry, [])
    assert resolved["properties"] == {"x": {"type": "integer"}, "y": {"$ref": "#anchor"}}


def test_the_registry_says_who_wrote_a_schema(admin_dir: Path, registry: SchemaRegistry) -> None:
    write_json(admin_dir / "roles/student/nodeSelector.json", {"type": "object"})
    write_json(admin_dir / "tolerations.json", {"type": "array"})

    def layer(key: str) -> str | None:
        found = registry.find(key, ["student"])
        return found[1] if found is not None else None

    assert [layer(key) for key in ("nodeSelector.json", "tolerations.json", "ide/role.json")] == [
        "role",
        "admin",
        "bundled",
    ]
    assert layer("nope.json") is None
