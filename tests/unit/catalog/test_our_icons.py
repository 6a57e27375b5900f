"""Our charts carry icons of our own, drawn for them (no third-party logo, nothing remote): each
chart's `icon` is the data URI of its `icon.svg`, an SVG the icon route accepts, so the
catalogue shows them offline."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from onyxia_py.catalog.icons import from_data_uri, validated

CHARTS = sorted(p.parent for p in (Path(__file__).parents[3] / "charts").glob("*/Chart.yaml"))


@pytest.mark.parametrize("chart", CHARTS, ids=lambda p: p.name)
def test_each_chart_icon_is_its_own_svg_inline(chart: Path) -> None:
    icon = yaml.safe_load((chart / "Chart.yaml").read_text())["icon"]
    drawn = (chart / "icon.svg").read_bytes()
    assert icon == "data:image/svg+xml;base64," + base64.b64encode(drawn).decode()
    served = from_data_uri(icon)
    assert served.content_type == "image/svg+xml"
    assert validated(drawn, chart.name).data == drawn
    assert b"http" not in drawn.replace(b"http://www.w3.org/2000/svg", b"")  # nothing remote
