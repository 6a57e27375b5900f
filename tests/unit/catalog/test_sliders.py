"""Slider bounds: the operator's region and role settings, within the chart's own bounds; and
the bundled role schema's defaults from the region."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from onyxia_py.catalog.context import ContextProject, ContextUser, build_context
from onyxia_py.catalog.form import LaunchForm, launch_form
from onyxia_py.catalog.launch import region_context
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir, resolve_schema
from onyxia_py.catalog.sliders import SliderPolicy, slider_policy
from onyxia_py.catalog.values import launch_values
from onyxia_py.errors import FieldError, Invalid
from onyxia_py.settings import RegionSettings, SliderBounds

from .conftest import write_json


def _slider(unit: str, low: float, high: float, default: str, range_id: str) -> dict[str, Any]:
    return {
        "type": "string",
        "render": "slider",
        "sliderMin": low,
        "sliderMax": high,
        "sliderStep": 1,
        "sliderUnit": unit,
        "sliderRangeId": range_id,
        "default": default,
    }


def _chart(cpu_max: float, memory_max: float, memory_unit: str = "Gi") -> dict[str, Any]:
    """A chart delegating `resources` to ide/resources.json, with its own inline bounds."""
    return {
        "type": "object",
        "properties": {
            "resources": {
                "type": "object",
                "x-onyxia": {"overwriteSchemaWith": "ide/resources.json"},
                "properties": {
                    "limits": {
                        "type": "object",
                        "properties": {
                            "cpu": _slider("m", 50, cpu_max, "1000m", "cpu"),
                            "memory": _slider(memory_unit, 1, memory_max, "4Gi", "memory"),
                        },
                    }
                },
            }
        },
    }


def _limits(schema: dict[str, Any]) -> dict[str, Any]:
    limits: dict[str, Any] = schema["properties"]["resources"]["properties"]["limits"]
    fields: dict[str, Any] = limits["properties"]
    return fields


def _form(
    registry: SchemaRegistry,
    schema: dict[str, Any],
    context: dict[str, Any],
    region: RegionSettings,
    roles: tuple[str, ...] = (),
) -> LaunchForm:
    policy = slider_policy(region, roles)
    return launch_form(resolve_schema(schema, registry, roles, policy), {}, context)


def test_the_bundled_schema_no_longer_caps_what_the_chart_allows(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    form = _form(registry, _chart(64000, 256), context, RegionSettings())
    assert form.schema is not None
    limits = _limits(form.schema)
    # Bundled: 8000m and 32Gi; the chart allows more, and nobody set anything else.
    assert (limits["cpu"]["sliderMax"], limits["memory"]["sliderMax"]) == (64000, 256)
    values = launch_values(form, {"resources": {"limits": {"cpu": "40000m"}}}, chart_schema=None)
    assert values["resources"]["limits"]["cpu"] == "40000m"


def test_a_chart_without_bounds_keeps_the_bundled_ones(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "resources": {
                "type": "object",
                "x-onyxia": {"overwriteSchemaWith": "ide/resources.json"},
            }
        },
    }
    resolved = resolve_schema(schema, registry, [], slider_policy(RegionSettings(), []))
    assert resolved["properties"]["resources"] == registry.get("ide/resources.json")


def test_region_and_role_settings_set_the_bounds_within_the_chart(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    region = RegionSettings(
        sliders={
            "cpu": SliderBounds(min=100, max=16000, step=100, unit="m"),
            # In another unit than the slider's: converted (16384Mi = 16Gi).
            "memory": SliderBounds(max=16384, unit="Mi"),
        },
        role_sliders={
            "big": {
                "memory": SliderBounds(max=512, unit="Gi"),
                "cpu": SliderBounds(max=2, unit=""),
            },
            "zz-later": {
                "memory": SliderBounds(max=1, unit="Gi"),
                "cpu": SliderBounds(min=1, unit=""),
            },
        },
    )
    chart = _chart(32000, 128)
    plain = _form(registry, chart, context, region)
    assert plain.schema is not None
    cpu, memory = _limits(plain.schema)["cpu"], _limits(plain.schema)["memory"]
    assert (cpu["sliderMin"], cpu["sliderMax"], cpu["sliderStep"]) == (100, 16000, 100)
    assert (memory["sliderMin"], memory["sliderMax"], memory["sliderUnit"]) == (1, 16, "Gi")

    big = _form(registry, chart, context, region, roles=("zz-later", "big"))
    assert big.schema is not None
    cpu, memory = _limits(big.schema)["cpu"], _limits(big.schema)["memory"]
    # The first role in sorted order wins each bound ("2" cores is 2000m); the later role only
    # fills the bound it left unset (min 1 core); 512Gi is beyond the chart's 128: the chart's.
    assert (cpu["sliderMin"], cpu["sliderMax"]) == (1000, 2000)
    assert memory["sliderMax"] == 128
    # The bundled defaults (4000m, 8Gi): the CPU one brought within the role's 2000m.
    assert big.defaults["resources"]["limits"] == {"cpu": "2000m", "memory": "8Gi"}

    errors = _errors(big, {"resources": {"limits": {"cpu": "3000m", "memory": "129Gi"}}})
    assert errors == [
        FieldError("resources.limits.cpu", "must be at most 2000m"),
        FieldError("resources.limits.memory", "must be at most 128Gi"),
    ]


def test_a_default_beyond_the_operators_bound_is_brought_within(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    region = RegionSettings(sliders={"cpu": SliderBounds(max=500, unit="m")})
    form = _form(registry, _chart(8000, 64), context, region)
    # The chart's default is 1000m: an unchanged launch must not exceed the operator's max.
    assert form.defaults["resources"]["limits"]["cpu"] == "500m"
    assert launch_values(form, {}, chart_schema=None)["resources"]["limits"]["cpu"] == "500m"


def test_an_operators_role_schema_beats_region_settings_not_the_chart(
    admin_dir: Path, registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    capped = registry.get("ide/resources.json")
    assert capped is not None
    capped["properties"]["limits"]["properties"]["cpu"]["sliderMax"] = 4000
    capped["properties"]["limits"]["properties"]["memory"]["sliderMax"] = 1024
    write_json(admin_dir / "roles/student/ide/resources.json", capped)
    region = RegionSettings(sliders={"cpu": SliderBounds(max=6000, unit="m")})
    student = _form(registry, _chart(8000, 64), context, region, roles=("student",))
    assert student.schema is not None
    limits = _limits(student.schema)
    assert (limits["cpu"]["sliderMax"], limits["memory"]["sliderMax"]) == (4000, 64)
    # Without the role, the region's setting applies.
    other = _form(registry, _chart(8000, 64), context, region)
    assert other.schema is not None
    assert _limits(other.schema)["cpu"]["sliderMax"] == 6000


def test_an_operators_default_schema_yields_to_region_settings(
    admin_dir: Path, registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    capped = json.loads((bundled_schema_dir() / "ide/resources.json").read_text())
    capped["properties"]["limits"]["properties"]["cpu"]["sliderMax"] = 4000
    write_json(admin_dir / "ide/resources.json", capped)
    no_settings = _form(registry, _chart(8000, 64), context, RegionSettings())
    assert no_settings.schema is not None
    assert _limits(no_settings.schema)["cpu"]["sliderMax"] == 4000
    region = RegionSettings(sliders={"cpu": SliderBounds(max=6, unit="")})
    set_by_region = _form(registry, _chart(8000, 64), context, region)
    assert set_by_region.schema is not None
    assert _limits(set_by_region.schema)["cpu"]["sliderMax"] == 6000


def test_inline_sliders_of_a_chart_get_the_settings_too(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    disk = _slider("Gi", 1, 100, "10Gi", "unused")
    disk["x-onyxia"] = {"useRegionSliderConfig": "disk"}
    schema = {"type": "object", "properties": {"size": disk}}
    region = RegionSettings(sliders={"disk": SliderBounds(min=5, max=500, unit="Gi")})
    form = _form(registry, schema, context, region)
    assert form.schema is not None
    size = form.schema["properties"]["size"]
    assert (size["sliderMin"], size["sliderMax"]) == (5, 100)


def test_the_policy_shows_in_the_context_in_onyxias_spelling() -> None:
    region = RegionSettings(
        sliders={"cpu": SliderBounds(min=100, max=4000, unit="m")},
        role_sliders={"big": {"cpu": SliderBounds(max=16, unit="")}},
    )
    assert slider_policy(region, ["big"]).effective() == {
        "cpu": {"sliderUnit": "", "sliderMin": 0.1, "sliderMax": 16}
    }
    assert SliderPolicy().effective() == {}
    assert slider_policy(region, []).effective() == {
        "cpu": {"sliderUnit": "m", "sliderMin": 100, "sliderMax": 4000}
    }


def test_resolution_does_not_modify_its_inputs(
    registry: SchemaRegistry, context: dict[str, Any]
) -> None:
    chart = _chart(8000, 64)
    before = copy.deepcopy(chart)
    _form(registry, chart, context, RegionSettings(sliders={"cpu": SliderBounds(max=1)}))
    assert chart == before


def _errors(form: LaunchForm, overrides: dict[str, Any]) -> list[FieldError]:
    with pytest.raises(Invalid) as caught:
        launch_values(form, overrides, chart_schema=None)
    return caught.value.errors


def test_the_bundled_role_schema_takes_the_regions_kubernetes_role(
    registry: SchemaRegistry, user: ContextUser, project: ContextProject
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "kubernetes": {"type": "object", "x-onyxia": {"overwriteSchemaWith": "ide/role.json"}}
        },
    }
    for settings, expected in (
        (RegionSettings(), {"enabled": True, "role": "view"}),
        (
            RegionSettings(kubernetes_enabled=False, kubernetes_role="admin"),
            {"enabled": False, "role": "admin"},
        ),
    ):
        context = build_context(user, project, region_context(settings), s3=None)
        form = launch_form(resolve_schema(schema, registry, []), {}, context)
        assert form.defaults == {"kubernetes": expected}
