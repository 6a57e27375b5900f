"""The launch form's fields from a resolved schema (pure; no server, no browser)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from onyxia_py.ui.form import Field, flatten, form_fields, to_yaml


def slider(default: str, end: str | None = None, unit: str = "m", **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "type": "string",
        "default": default,
        "render": "slider",
        "sliderMin": 50,
        "sliderMax": 8000,
        "sliderStep": 50,
        "sliderUnit": unit,
        **extra,
    }
    if end:
        node |= {"sliderExtremity": end, "sliderRangeId": "cpu", "sliderExtremitySemantic": end}
    return node


RESOURCES = {
    "type": "object",
    "title": "Resources",
    "properties": {
        "requests": {"type": "object", "properties": {"cpu": slider("100m", "down")}},
        "limits": {
            "type": "object",
            "properties": {
                "cpu": slider("4000m", "up"),
                "nvidia.com/gpu": {"type": "string", "default": "0", "title": "GPU"},
            },
        },
    },
}


def by_path(fields: list[Field]) -> dict[tuple[str, ...], Field]:
    return {f.path: f for f in flatten(fields)}


def test_a_requests_limits_pair_is_one_range_in_the_parent_section() -> None:
    fields = form_fields({"type": "object", "properties": {"resources": RESOURCES}})
    resources = fields[0]
    assert resources.kind == "group"
    kinds = [(c.kind, c.path) for c in resources.children]
    # `requests` held only the range and is gone; `limits` keeps its GPU field.
    assert kinds == [
        ("range", ("resources", "requests", "cpu")),
        ("group", ("resources", "limits")),
    ]
    low, high = resources.children[0].ends
    assert (low.path, high.path) == (
        ("resources", "requests", "cpu"),
        ("resources", "limits", "cpu"),
    )
    assert low.slider is not None
    assert high.slider is not None
    assert (low.slider.number, high.slider.number, low.slider.unit) == ("100", "4000", "m")
    limits = resources.children[1]
    assert [c.path[-1] for c in limits.children] == ["nvidia.com/gpu"]
    assert limits.children[0].gpu == "count"
    assert limits.children[0].error_key == "resources.limits.nvidia.com/gpu"


def test_slider_values_are_put_on_the_slider_scale() -> None:
    schema = {
        "type": "object",
        "properties": {
            "cpu": slider("1"),
            "memory": slider("512Mi", unit="Gi"),
            "odd": slider("lots"),
        },
    }
    fields = by_path(form_fields(schema))
    cpu, memory, odd = fields[("cpu",)], fields[("memory",)], fields[("odd",)]
    assert cpu.slider is not None
    assert cpu.slider.number == "1000"
    assert memory.slider is not None
    assert memory.slider.number == "0.5"
    assert odd.kind == "text"  # not a quantity: typed, not slid


def test_hidden_readonly_const_and_conditional_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "global": {"type": "object", "x-onyxia": {"hidden": True}, "properties": {"a": {}}},
            "secret": {"type": "string", "x-onyxia": {"hidden": True}},
            "fixed": {"type": "integer", "const": 8888, "default": 8888},
            "locked": {"type": "string", "default": "x", "x-onyxia": {"readonly": True}},
            "persistence": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean", "default": True},
                    "size": {
                        "type": "string",
                        "default": "10Gi",
                        "hidden": {"value": False, "path": "persistence/enabled"},
                    },
                },
            },
        },
    }
    fields = by_path(form_fields(schema))
    assert ("global",) not in fields
    assert ("secret",) not in fields
    assert fields[("fixed",)].readonly
    assert fields[("fixed",)].kind == "number"
    assert fields[("locked",)].readonly
    assert fields[("persistence", "enabled")].kind == "checkbox"
    rule = fields[("persistence", "size")].hidden_when
    assert rule is not None
    assert (rule.path, json.loads(rule.value)) == ("persistence/enabled", False)


def test_choices_passwords_free_objects_and_saved_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "policy": {"type": "string", "enum": ["IfNotPresent", "Always"], "default": "Always"},
            "image": {
                "type": "string",
                "render": "list",
                "listEnum": ["a:1", "a:2"],
                "default": "a:1",
            },
            "tag": {"type": "string", "listEnum": ["x", "y"], "default": "x"},
            "password": {"type": "string", "render": "password", "default": "s3cret"},
            "annotations": {"type": "object", "default": {"a": "b"}},
            "tolerations": {"type": "array", "default": []},
        },
    }
    fields = by_path(form_fields(schema, {"image": "custom:3", "annotations": {"k": "v\nw"}}))
    policy = fields[("policy",)]
    assert policy.kind == "select"
    assert [(o.label, o.selected) for o in policy.options] == [
        ("IfNotPresent", False),
        ("Always", True),
    ]
    image = fields[("image",)]
    # A saved value outside the list stays choosable, and is the one selected.
    first = image.options[0]
    assert (json.loads(first.value), first.selected) == ("custom:3", True)
    assert fields[("tag",)].kind == "text"
    assert fields[("tag",)].suggestions == ("x", "y")
    assert fields[("password",)].kind == "password"
    annotations = fields[("annotations",)]
    assert annotations.kind == "yaml"
    assert yaml.safe_load(annotations.text) == {"k": "v\nw"}
    assert yaml.safe_load(annotations.default_text) == {"a": "b"}
    assert json.loads(annotations.default_json) == {"a": "b"}
    assert fields[("tolerations",)].text == "[]"


def test_yaml_is_written_in_block_style_with_literal_multiline_strings() -> None:
    value = {"script": "echo one\necho two\n", "list": [{"key": "nvidia.com/gpu"}], "é": "ü"}
    text = to_yaml(value)
    assert "script: |\n  echo one\n  echo two\n" in text
    assert "é: ü" in text
    assert yaml.safe_load(text) == value


def test_s3_fields_the_launch_fills_say_so() -> None:
    schema = {
        "type": "object",
        "properties": {
            "s3": {
                "type": "object",
                "properties": {
                    "accessKeyId": {
                        "type": "string",
                        "default": "",
                        "x-onyxia": {"overwriteDefaultWith": "{{s3.AWS_ACCESS_KEY_ID}}"},
                    },
                    "endpoint": {
                        "type": "string",
                        "default": "",
                        "x-onyxia": {"overwriteDefaultWith": "s3.AWS_S3_ENDPOINT"},
                    },
                    "bucket": {"type": "string", "default": "mine"},
                },
            }
        },
    }
    fields = by_path(form_fields(schema))
    assert fields[("s3", "accessKeyId")].at_launch
    assert fields[("s3", "endpoint")].at_launch
    assert not fields[("s3", "bucket")].at_launch
    # A value the user typed is theirs: no note.
    typed = by_path(form_fields(schema, {"s3": {"accessKeyId": "AKIA-mine"}}))
    assert not typed[("s3", "accessKeyId")].at_launch
