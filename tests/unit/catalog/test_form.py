"""Launch forms: defaults computed from the onyxia context, the schema and values.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from onyxia_py.catalog.form import LaunchForm, launch_form, with_image
from onyxia_py.catalog.schema import SchemaRegistry, resolve_schema


def _default(prop: dict[str, Any], context: dict[str, Any], values: Any = None) -> Any:
    """The computed default of a single property `p`."""
    schema = {"type": "object", "properties": {"p": prop}}
    form = launch_form(schema, {"p": values} if values is not None else {}, context)
    return form.defaults.get("p", "<absent>")


def _odw(expression: object, **node: Any) -> dict[str, Any]:
    return {**node, "x-onyxia": {"overwriteDefaultWith": expression}}


def test_bare_path_keeps_a_list(context: dict[str, Any]) -> None:
    prop = _odw("region.tolerations", type="array", default=[])
    assert _default(prop, context) == [
        {"key": "pool", "operator": "Equal", "value": "cpu", "effect": "NoSchedule"}
    ]


def test_single_mustache_keeps_a_bool(context: dict[str, Any]) -> None:
    assert (
        _default(_odw("{{ s3.pathStyleAccess }}", type="boolean", default=False), context) is True
    )
    assert _default(_odw("{{k8s.ingress}}", type="boolean"), context) is True


def test_template_with_several_parts(context: dict[str, Any]) -> None:
    prop = _odw("{{project.id}}-{{k8s.randomSubdomain}}-0.{{k8s.domain}}", type="string")
    assert _default(prop, context) == "user-alice-123456-0.lab.example.org"


def test_template_renders_scalars_like_javascript(context: dict[str, Any]) -> None:
    prop = _odw("ingress={{k8s.ingress}} port={{s3.port}}", type="string")
    assert _default(prop, context) == "ingress=true port=443"


@pytest.mark.parametrize(
    "expression",
    [
        "{{project.id}}-{{k8s.nothing}}.{{k8s.domain}}",  # one part undefined
        "{{project.id}}-{{region.tolerations}}",  # a list cannot be interpolated
        "user.nothing",
        "{{git.project}}",
    ],
)
def test_unresolvable_falls_back_to_the_schema_default(
    context: dict[str, Any], expression: str
) -> None:
    prop = _odw(expression, type="string", default="fallback")
    assert _default(prop, context, values="from-values-yaml") == "fallback"


def test_unresolvable_without_default_falls_back_to_values_yaml(context: dict[str, Any]) -> None:
    prop = _odw("user.nothing", type="string")
    assert _default(prop, context, values="from-values-yaml") == "from-values-yaml"
    assert _default(prop, context) == "<absent>"


def test_literal_object_and_array_resolve_their_leaves(context: dict[str, Any]) -> None:
    hosts = [
        {
            "host": "{{project.id}}-qdrant.{{k8s.domain}}",
            "paths": [{"path": "/", "pathType": "Prefix"}],
            "tls": "{{k8s.useCertManager}}",
        }
    ]
    prop = _odw(hosts, type="array", default=[])
    assert _default(prop, context) == [
        {
            "host": "user-alice-qdrant.lab.example.org",
            "paths": [{"path": "/", "pathType": "Prefix"}],
            "tls": False,
        }
    ]
    broken = _odw({"a": "{{user.email}}", "b": "{{user.nothing}}"}, type="object", default={})
    assert _default(broken, context) == {}


def test_array_mapping_over_s3_profiles(context: dict[str, Any]) -> None:
    prop = _odw(
        "{{s3_array}}",
        type="array",
        default=[],
        items={
            "type": "object",
            "properties": {
                "profile": _odw("profileName", type="string"),
                "accessKeyId": _odw("{{AWS_ACCESS_KEY_ID}}", type="string"),
                "endpoint": _odw("https://{{AWS_S3_ENDPOINT}}", type="string"),
                "pathStyleAccess": {"type": "boolean"},  # implicitly {{pathStyleAccess}}
                "region": {"type": "string", "default": "none"},  # no such key: the default
            },
        },
    )
    assert _default(prop, context) == [
        {
            "profile": "default",
            "accessKeyId": "ASIAEXAMPLE",
            "endpoint": "https://minio.example.org",
            "pathStyleAccess": True,
            "region": "none",
        }
    ]


def test_values_are_coerced_to_the_node_type_or_dropped(context: dict[str, Any]) -> None:
    # region.resources.gpu is the integer 1; GPU counts are strings.
    assert _default(_odw("region.resources.gpu", type="string", default="2"), context) == "1"
    # user.lang is "fr"; a node that only knows English falls back.
    only_en = _odw("user.lang", type="string", enum=["en"], default="en")
    assert _default(only_en, context) == "en"
    # A list where a string is expected is not a valid default.
    assert _default(_odw("region.tolerations", type="string", default="x"), context) == "x"


def test_const_wins_over_everything(context: dict[str, Any]) -> None:
    prop = _odw("user.email", type="string", const="fixed", default="default")
    assert _default(prop, context, values="yaml") == "fixed"


def test_list_enum_comes_from_the_context(context: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "group": {
                "type": "string",
                "render": "list",
                "listEnum": ["placeholder"],
                "enum": ["data", "sspcloud-admin", "other"],
                "x-onyxia": {"overwriteListEnumWith": "user.decodedIdToken.groups"},
            },
            "missing": {
                "type": "string",
                "listEnum": ["kept"],
                "x-onyxia": {"overwriteListEnumWith": "{{user.nothing}}"},
            },
        },
    }
    form = launch_form(schema, {}, context)
    assert form.schema is not None
    group = form.schema["properties"]["group"]
    assert group["listEnum"] == ["data", "sspcloud-admin"]
    assert group["enum"] == ["data", "sspcloud-admin", "other"]  # a hard rule stays as it is
    assert form.schema["properties"]["missing"]["listEnum"] == ["kept"]


def test_jupyter_like_chart_defaults(
    registry: SchemaRegistry,
    jupyter_schema: dict[str, Any],
    jupyter_values: dict[str, Any],
    context: dict[str, Any],
) -> None:
    resolved = resolve_schema(jupyter_schema, registry, ["datascientist"])
    form = launch_form(resolved, jupyter_values, context)
    assert form.raw_values is False
    assert form.defaults == {
        # The schema default beats values.yaml; pullPolicy is not in the schema and is kept.
        "service": {"image": {"version": "py3.13", "pullPolicy": "IfNotPresent"}},
        # From the bundled ide/resources.json: cpuRequest from the region, the rest defaults.
        "resources": {
            "requests": {"cpu": "200m", "memory": "2Gi"},
            "limits": {"cpu": "4000m", "memory": "8Gi"},
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
        "kubernetes": {"enabled": True, "role": "view"},
        "userPreferences": {"language": "fr"},
        "global": {"suspend": False},
        "podAnnotations": {},
        "env": [{"name": "TZ", "value": "UTC"}],
        "replicaCount": 1,
    }


def test_the_form_schema_carries_defaults_and_hints(
    registry: SchemaRegistry,
    jupyter_schema: dict[str, Any],
    jupyter_values: dict[str, Any],
    context: dict[str, Any],
) -> None:
    resolved = resolve_schema(jupyter_schema, registry, [])
    form = launch_form(resolved, jupyter_values, context)
    assert form.schema is not None
    props = form.schema["properties"]
    hostname = props["ingress"]["properties"]["hostname"]
    assert hostname["default"] == "user-alice-123456-0.lab.example.org"
    assert hostname["x-onyxia"]["hidden"] is True
    cpu = props["resources"]["properties"]["limits"]["properties"]["cpu"]
    assert cpu["default"] == "4000m"
    assert (cpu["render"], cpu["sliderExtremity"], cpu["sliderRangeId"]) == ("slider", "up", "cpu")
    assert props["service"]["properties"]["image"]["properties"]["version"]["listEnum"] == [
        "py3.12",
        "py3.13",
    ]
    # The input schema is not modified.
    assert "default" not in resolved["properties"]["ingress"]["properties"]["hostname"]


def test_values_yaml_fills_what_the_schema_leaves_open(context: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {
            "open": {"type": "object", "properties": {"a": {"type": "integer", "default": 1}}},
            "closed": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"a": {"type": "integer"}},
            },
            "opaque": {"type": "object"},
        },
    }
    values = {
        "open": {"a": 0, "b": [1, 2]},
        "closed": {"a": 5, "b": 6},
        "opaque": {"x": {"y": 1}},
        "other": "kept",
    }
    form = launch_form(schema, values, context)
    assert form.defaults == {
        "open": {"a": 1, "b": [1, 2]},
        "closed": {"a": 5},
        "opaque": {"x": {"y": 1}},
        "other": "kept",
    }


def test_a_chart_without_schema_gets_raw_values(context: dict[str, Any]) -> None:
    values = {"replicas": 1, "image": {"tag": "1.0"}}
    form = launch_form(None, values, context)
    assert form == LaunchForm(None, values, raw_values=True)
    assert form.defaults is not values


def test_an_operator_image_becomes_the_default_and_first_suggestion() -> None:
    version = {"type": "string", "default": "inseefrlab/a:1", "listEnum": ["inseefrlab/a:1", "b:2"]}
    image = {"type": "object", "properties": {"version": version}}
    service = {"type": "object", "properties": {"image": image}}
    schema = {"type": "object", "properties": {"service": service}}
    form = launch_form(schema, {"service": {"image": {"version": "inseefrlab/a:1"}}}, {})
    local = with_image(form, "localhost/onyxia/jupyter:abc")
    assert local.defaults["service"]["image"]["version"] == "localhost/onyxia/jupyter:abc"
    field = local.schema["properties"]["service"]["properties"]["image"]["properties"]["version"]  # type: ignore[index]
    assert field["default"] == "localhost/onyxia/jupyter:abc"
    assert field["listEnum"] == ["localhost/onyxia/jupyter:abc", "inseefrlab/a:1", "b:2"]
    # The form it came from is unchanged; a chart without a schema gets the value too.
    assert form.defaults["service"]["image"]["version"] == "inseefrlab/a:1"
    raw = with_image(launch_form(None, {}, {}), "x:1")
    assert raw.defaults == {"service": {"image": {"version": "x:1"}}}
