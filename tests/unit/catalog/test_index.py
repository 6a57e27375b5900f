"""Helm index parsing, semver ordering, filters and pruning."""

from __future__ import annotations

from typing import Any

import pytest

from onyxia_py.catalog.index import (
    InvalidIndex,
    catalog_charts,
    parse_index,
    resolve_dependency,
    satisfies,
    semver_key,
)
from onyxia_py.catalog.models import CatalogSpec


def entry(name: str, version: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "urls": [f"{name}-{version}.tgz"], **extra}


INDEX: dict[str, Any] = {
    "apiVersion": "v1",
    "entries": {
        "jupyter": [
            entry("jupyter", v, keywords=["python"], annotations={"tier": "ide"})
            for v in ["1.9.0", "1.10.0", "2.0.0-rc.1", "1.10.2", "2.0.0", "1.2.3"]
        ],
        "rstudio": [entry("rstudio", "0.5.0", keywords=["r"])],
        "postgres": [entry("postgres", "3.1.0", keywords=["database"], annotations={"tier": "db"})],
        "library-chart": [entry("library-chart", "1.0.0", type="library")],
    },
}


def spec(**fields: Any) -> CatalogSpec:
    return CatalogSpec.model_validate({"id": "ide", "name": "IDE", "location": "x", **fields})


def test_semver_order() -> None:
    versions = ["1.10.0", "1.9.0", "2.0.0-rc.1", "2.0.0", "2.0.0-alpha", "not-semver", "v1.2"]
    ordered = sorted(versions, key=semver_key, reverse=True)
    assert ordered == [
        "2.0.0",
        "2.0.0-rc.1",
        "2.0.0-alpha",
        "1.10.0",
        "1.9.0",
        "v1.2",
        "not-semver",
    ]


def test_parse_index_sorts_newest_first() -> None:
    charts = parse_index(INDEX)
    assert [v.version for v in charts["jupyter"]][:3] == ["2.0.0", "2.0.0-rc.1", "1.10.2"]


@pytest.mark.parametrize("document", [None, [], {"entries": []}, "text"])
def test_not_an_index(document: Any) -> None:
    with pytest.raises(InvalidIndex):
        parse_index(document)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ({"multipleServicesMode": "latest"}, ["2.0.0"]),
        (
            {"multipleServicesMode": "all"},
            ["2.0.0", "2.0.0-rc.1", "1.10.2", "1.10.0", "1.9.0", "1.2.3"],
        ),
        ({"multipleServicesMode": "skipPatches"}, ["2.0.0", "1.10.2", "1.9.0", "1.2.3"]),
        ({"multipleServicesMode": "maxNumber", "maxNumberOfVersions": 2}, ["2.0.0", "2.0.0-rc.1"]),
    ],
)
def test_versions_modes(mode: dict[str, Any], expected: list[str]) -> None:
    charts = {c.name: c for c in catalog_charts(parse_index(INDEX), spec(**mode))}
    assert [v.version for v in charts["jupyter"].versions] == expected


def test_library_charts_are_hidden_and_highlighted_first() -> None:
    charts = catalog_charts(parse_index(INDEX), spec(highlightedCharts=["rstudio", "postgres"]))
    assert [c.name for c in charts] == ["rstudio", "postgres", "jupyter"]
    assert [c.highlighted for c in charts] == [True, True, False]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"excludedCharts": ["Jupyter"]}, {"rstudio", "postgres"}),
        ({"includeKeywords": ["python", "r"]}, {"jupyter", "rstudio"}),
        ({"excludeKeywords": ["database"]}, {"jupyter", "rstudio"}),
        ({"includeAnnotations": {"tier": "db"}}, {"postgres"}),
        ({"excludeAnnotations": {"tier": "ide"}}, {"rstudio", "postgres"}),
    ],
)
def test_filters(fields: dict[str, Any], expected: set[str]) -> None:
    assert {c.name for c in catalog_charts(parse_index(INDEX), spec(**fields))} == expected


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("1.0.0", "1.0.0", True),
        ("1.0.1", "1.0.0", False),
        ("1.4.2", "1.x", True),
        ("2.0.0", "1.x", False),
        ("1.4.2", "^1.2.0", True),
        ("2.0.0", "^1.2.0", False),
        ("1.2.9", "~1.2.0", True),
        ("1.3.0", "~1.2.0", False),
        ("1.5.0", ">=1.2.0 <2.0.0", True),
        ("2.5.0", ">=1.2.0, <2.0.0", False),
        ("0.3.1", "*", True),
    ],
)
def test_constraints(version: str, constraint: str, ok: bool) -> None:
    assert satisfies(version, constraint) is ok


def test_dependencies_resolve_to_the_newest_match() -> None:
    index = parse_index(
        {
            "entries": {
                "library-chart": [entry("library-chart", v) for v in ["1.0.0", "1.2.0", "2.0.0"]]
            }
        }
    )
    found = resolve_dependency("library-chart", "^1.0.0", index)
    assert found is not None
    assert found.version == "1.2.0"
    assert resolve_dependency("library-chart", "3.x", index) is None
    assert resolve_dependency("missing", "*", index) is None


def test_spec_ids_and_localized_text() -> None:
    localized = spec(name={"en": "IDE", "fr": "EDI"})
    assert localized.text(localized.name, "fr") == "EDI"
    assert localized.text(localized.name, "de") == "IDE"
    with pytest.raises(ValueError, match="DNS label"):
        spec(id="Not Valid")
    assert "secret" not in repr(spec(username="u", password="secret"))
