"""Launch values: defaults plus overrides, with the platform's limits enforced."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from onyxia_py.catalog.form import LaunchForm, launch_form
from onyxia_py.catalog.schema import SchemaRegistry, resolve_schema
from onyxia_py.catalog.values import launch_values, merge, without_platform_values
from onyxia_py.errors import FieldError, Invalid

from .conftest import write_json

GPU_NODE_SELECTOR = {
    "type": "object",
    "title": "GPU type",
    "additionalProperties": False,
    "properties": {
        "nvidia.com/gpu.product": {
            "type": "string",
            "enum": ["NVIDIA-A2", "Tesla-T4"],
            "default": "NVIDIA-A2",
        }
    },
}


def _form(
    registry: SchemaRegistry,
    schema: dict[str, Any],
    values: dict[str, Any],
    context: dict[str, Any],
    roles: tuple[str, ...] = (),
) -> LaunchForm:
    return launch_form(resolve_schema(schema, registry, roles), values, context)


def _errors(form: LaunchForm, overrides: dict[str, Any], **kwargs: Any) -> list[FieldError]:
    with pytest.raises(Invalid) as caught:
        launch_values(form, overrides, chart_schema=kwargs.get("chart_schema"))
    assert caught.value.detail == "the launch values are not valid"
    return caught.value.errors


@pytest.fixture
def jupyter_form(
    registry: SchemaRegistry,
    jupyter_schema: dict[str, Any],
    jupyter_values: dict[str, Any],
    context: dict[str, Any],
) -> LaunchForm:
    """The Jupyter-like chart's form with only the bundled registry schemas."""
    return _form(registry, jupyter_schema, jupyter_values, context)


def test_merge_is_deep_replaces_lists_and_is_pure() -> None:
    base: dict[str, Any] = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    override: dict[str, Any] = {"a": {"c": [3], "e": {"f": None}}, "d": {"now": "a dict"}}
    before = (copy.deepcopy(base), copy.deepcopy(override))
    merged = merge(base, override)
    assert merged == {"a": {"b": 1, "c": [3], "e": {"f": None}}, "d": {"now": "a dict"}}
    assert (base, override) == before
    merged["a"]["c"].append(4)
    assert override["a"]["c"] == [3]


def test_no_overrides_gives_the_defaults(jupyter_form: LaunchForm) -> None:
    assert launch_values(jupyter_form, {}, chart_schema=None) == jupyter_form.defaults


def test_a_valid_override_yields_exactly_the_expected_values(
    jupyter_form: LaunchForm, jupyter_schema: dict[str, Any]
) -> None:
    overrides = {
        "service": {"image": {"version": "py3.12"}},
        "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "2", "memory": "16Gi"}},
        "env": [{"name": "MODE", "value": "dev"}],
        "podAnnotations": {"team": "data"},
        "kubernetes": {"role": "edit"},
    }
    values = launch_values(jupyter_form, overrides, chart_schema=jupyter_schema)
    assert values == {
        "service": {"image": {"version": "py3.12", "pullPolicy": "IfNotPresent"}},
        "resources": {
            "requests": {"cpu": "500m", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "16Gi"},
        },
        "security": {
            "password": "one-time-pw-123",
            "allowlist": {"enabled": False, "ip": "203.0.113.7"},
        },
        "ingress": {
            "enabled": True,
            "hostname": "user-alice-123456-0.lab.example.org",
            "annotations": {},
        },
        "s3": {
            "enabled": True,
            "accessKeyId": "ASIAEXAMPLE",
            "endpoint": "minio.example.org",
            "pathStyleAccess": True,
        },
        "tolerations": [
            {"key": "pool", "operator": "Equal", "value": "cpu", "effect": "NoSchedule"}
        ],
        "kubernetes": {"enabled": True, "role": "edit"},
        "userPreferences": {"language": "fr"},
        "global": {"suspend": False},
        "podAnnotations": {"team": "data"},
        # The list is replaced, not appended to.
        "env": [{"name": "MODE", "value": "dev"}],
        "replicaCount": 1,
    }


def test_hidden_and_read_only_fields_cannot_change(jupyter_form: LaunchForm) -> None:
    assert _errors(jupyter_form, {"ingress": {"hostname": "evil.example.com"}}) == [
        FieldError("ingress.hostname", "is fixed by the platform")
    ]
    assert _errors(jupyter_form, {"global": {"suspend": True}}) == [
        FieldError("global.suspend", "is read-only")
    ]
    # Tolerations are hidden by the bundled tolerations.json.
    assert _errors(jupyter_form, {"tolerations": []}) == [
        FieldError("tolerations", "is fixed by the platform")
    ]


def test_sending_a_locked_field_unchanged_is_fine(jupyter_form: LaunchForm) -> None:
    same = {
        "ingress": {"enabled": True, "hostname": "user-alice-123456-0.lab.example.org"},
        "global": {"suspend": False},
    }
    assert launch_values(jupyter_form, same, chart_schema=None) == jupyter_form.defaults


def test_a_partial_locked_object_that_changes_nothing_is_fine(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "networkPolicy": {"x-onyxia": {"overwriteSchemaWith": "network-policy.json"}}
        },
    }
    form = _form(registry, schema, {}, context)
    assert form.defaults == {
        "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {}}]}
    }
    assert launch_values(form, {"networkPolicy": {"enabled": True}}, chart_schema=None) == {
        "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {}}]}
    }
    assert _errors(form, {"networkPolicy": {"enabled": False, "from": []}}) == [
        FieldError("networkPolicy.enabled", "is fixed by the platform"),
        FieldError("networkPolicy.from", "is fixed by the platform"),
    ]


def test_const_cannot_change(registry: SchemaRegistry, context: dict[str, Any]) -> None:
    schema = {"type": "object", "properties": {"mode": {"type": "string", "const": "safe"}}}
    form = _form(registry, schema, {}, context)
    assert _errors(form, {"mode": "unsafe"}) == [
        FieldError("mode", "is fixed by the platform"),
        FieldError("mode", "must be 'safe'"),
    ]


def test_unknown_keys_are_refused(jupyter_form: LaunchForm) -> None:
    errors = _errors(
        jupyter_form,
        {
            "surprise": 1,
            "resources": {"limits": {"amd.com/gpu": "1"}},
            "service": {"image": {"pullPolicy": "Always"}},  # only in values.yaml
        },
    )
    assert errors == [
        FieldError("surprise", "not a setting of this chart"),
        FieldError("resources.limits.amd.com/gpu", "not a setting of this chart"),
        FieldError("service.image.pullPolicy", "not a setting of this chart"),
    ]


def test_open_objects_accept_new_keys(registry: SchemaRegistry, context: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "extra": {"type": "object", "additionalProperties": True, "properties": {}},
            "byPattern": {
                "type": "object",
                "properties": {},
                "patternProperties": {"^x-": {"type": "integer"}},
            },
        },
    }
    form = _form(registry, schema, {}, context)
    overrides = {"labels": {"a": "b"}, "extra": {"anything": [1]}, "byPattern": {"x-one": 1}}
    assert launch_values(form, overrides, chart_schema=None) == overrides
    assert _errors(form, {"labels": {"a": 1}, "byPattern": {"y": 1, "x-two": "2"}}) == [
        FieldError("byPattern.y", "not a setting of this chart"),
        FieldError("labels.a", "must be of type string"),
        FieldError("byPattern.x-two", "must be of type integer"),
    ]


def test_admin_caps_from_the_registry_are_enforced(
    admin_dir: Path,
    registry: SchemaRegistry,
    jupyter_schema: dict[str, Any],
    jupyter_values: dict[str, Any],
    context: dict[str, Any],
) -> None:
    capped = registry.get("ide/resources.json")
    assert capped is not None
    limits = capped["properties"]["limits"]["properties"]
    limits["cpu"]["sliderMax"] = 4000
    limits["memory"]["enum"] = ["4Gi", "8Gi"]
    write_json(admin_dir / "roles/student/ide/resources.json", capped)
    form = _form(registry, jupyter_schema, jupyter_values, context, roles=("student",))
    errors = _errors(form, {"resources": {"limits": {"cpu": "6000m", "memory": "16Gi"}}})
    assert errors == [
        FieldError("resources.limits.memory", "must be one of ['4Gi', '8Gi']"),
        FieldError("resources.limits.cpu", "must be at most 4000m"),
    ]
    # The same request is fine for a user without the capped role.
    uncapped = _form(registry, jupyter_schema, jupyter_values, context)
    overrides = {"resources": {"limits": {"cpu": "6000m", "memory": "16Gi"}}}
    assert launch_values(uncapped, overrides, chart_schema=None)["resources"]["limits"] == {
        "cpu": "6000m",
        "memory": "16Gi",
    }


def test_slider_bounds_understand_quantities(jupyter_form: LaunchForm) -> None:
    # The bundled schema allows 50m..8000m of CPU and 1..32Gi of memory.
    ok = {"resources": {"limits": {"cpu": "7.5", "memory": "32768Mi"}}}
    assert launch_values(jupyter_form, ok, chart_schema=None)["resources"]["limits"] == {
        "cpu": "7.5",
        "memory": "32768Mi",
    }
    errors = _errors(jupyter_form, {"resources": {"limits": {"cpu": "9", "memory": "64Gi"}}})
    assert errors == [
        FieldError("resources.limits.cpu", "must be at most 8000m"),
        FieldError("resources.limits.memory", "must be at most 32Gi"),
    ]


def test_requests_may_not_exceed_limits(jupyter_form: LaunchForm) -> None:
    errors = _errors(jupyter_form, {"resources": {"requests": {"cpu": "6000m"}}})
    assert errors == [FieldError("resources.requests.cpu", "must not exceed resources.limits.cpu")]


def test_gpu_type_enum_from_the_registry(
    admin_dir: Path, registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    write_json(admin_dir / "nodeSelector-gpu.json", GPU_NODE_SELECTOR)
    schema = {
        "type": "object",
        "properties": {
            "nodeSelector": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "x-onyxia": {"overwriteSchemaWith": "nodeSelector-gpu.json"},
            },
            "resources": {
                "type": "object",
                "x-onyxia": {"overwriteSchemaWith": "ide/resources-gpu.json"},
            },
        },
    }
    form = _form(registry, schema, {"nodeSelector": {}}, context)
    assert form.defaults["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A2"}
    assert form.defaults["resources"]["limits"]["nvidia.com/gpu"] == "1"
    good = {"nodeSelector": {"nvidia.com/gpu.product": "Tesla-T4"}}
    assert launch_values(form, good, chart_schema=None)["nodeSelector"] == good["nodeSelector"]
    errors = _errors(
        form,
        {
            "nodeSelector": {
                "nvidia.com/gpu.product": "NVIDIA-H100",
                "kubernetes.io/hostname": "n1",
            },
            "resources": {"limits": {"nvidia.com/gpu": "8"}},
        },
    )
    assert errors == [
        FieldError("nodeSelector.kubernetes.io/hostname", "not a setting of this chart"),
        FieldError(
            "nodeSelector.nvidia.com/gpu.product", "must be one of ['NVIDIA-A2', 'Tesla-T4']"
        ),
        FieldError("resources.limits.nvidia.com/gpu", "must be at most 3"),
    ]


def test_many_errors_are_reported_at_once_with_paths(jupyter_form: LaunchForm) -> None:
    errors = _errors(
        jupyter_form,
        {
            "env": [{"name": "OK"}, {"name": "bad name"}, {"value": "x"}],
            "kubernetes": {"role": "cluster-admin"},
            "security": {"password": "short"},
            "userPreferences": {"language": "de"},
            "s3": {"enabled": "yes"},
        },
    )
    assert set(errors) == {
        FieldError("env.1.name", "must match the pattern ^[A-Z_]+$"),
        FieldError("env.2.name", "is required"),
        FieldError("kubernetes.role", "must be one of ['view', 'edit', 'admin']"),
        FieldError("security.password", "must be at least 8 characters long"),
        FieldError("userPreferences.language", "must be one of ['en', 'fr']"),
        FieldError("s3.enabled", "must be of type boolean"),
    }
    assert len(errors) == 6


def test_the_chart_schema_is_checked_too(registry: SchemaRegistry, context: dict[str, Any]) -> None:
    chart_schema = {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "maximum": 3},
            "resources": {"$ref": "ide/resources.json"},
        },
    }
    # An operator override that forgot the chart's own limit.
    loose = {"type": "object", "properties": {"replicas": {"type": "integer", "maximum": 10}}}
    form = launch_form(loose, {"replicas": 1}, context)
    assert _errors(form, {"replicas": 5}, chart_schema=chart_schema) == [
        FieldError("replicas", "must be at most 3")
    ]
    assert launch_values(form, {"replicas": 3}, chart_schema=chart_schema) == {"replicas": 3}


def test_raw_values_charts_take_anything_their_schema_allows(context: dict[str, Any]) -> None:
    form = launch_form(None, {"image": {"tag": "1"}, "replicas": 1}, context)
    overrides = {"image": {"repo": "x"}, "new": [1]}
    assert launch_values(form, overrides, chart_schema=None) == {
        "image": {"tag": "1", "repo": "x"},
        "replicas": 1,
        "new": [1],
    }


def test_an_unusable_chart_schema_is_refused_clearly(context: dict[str, Any]) -> None:
    form = launch_form({"type": "object", "properties": {"a": {"type": "nope"}}}, {}, context)
    with pytest.raises(Invalid, match="not a usable JSON Schema"):
        launch_values(form, {}, chart_schema=None)


def test_a_whole_form_keeps_only_what_the_user_decides() -> None:
    schema = {
        "type": "object",
        "properties": {
            "resources": {
                "type": "object",
                "properties": {"cpu": {"type": "string"}},
            },
            "ingress": {"type": "object", "x-onyxia": {"hidden": True}},
            "kind": {"const": "lab"},
            "owner": {"type": "string", "readOnly": True},
            "s3": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean"},
                    "key": {
                        "type": "string",
                        "x-onyxia": {"overwriteDefaultWith": "{{s3.AWS_ACCESS_KEY_ID}}"},
                    },
                    "region": {
                        "type": "string",
                        "x-onyxia": {"overwriteDefaultWith": "s3.AWS_DEFAULT_REGION"},
                    },
                },
            },
            "password": {
                "type": "string",
                "x-onyxia": {"overwriteDefaultWith": "{{project.password}}"},
            },
            "extra": {"type": "object"},
        },
    }
    sent = {
        "resources": {"cpu": "300m"},
        "ingress": {"hostname": "theirs.example.org"},
        "kind": "lab",
        "owner": "someone",
        "s3": {"enabled": True, "key": "THEIRS", "region": "eu"},
        "password": "chosen",
        "extra": {"free": 1},
        "unknown": True,
    }
    assert without_platform_values(schema, sent) == {
        "resources": {"cpu": "300m"},
        "s3": {"enabled": True},
        "password": "chosen",
        "extra": {"free": 1},
        "unknown": True,  # not dropped: refused as any key the schema does not describe
    }
    assert without_platform_values(None, sent) == sent  # no schema: nothing to tell apart
