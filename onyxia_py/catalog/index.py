"""Helm repository indexes: parsing, semver ordering, filtering and pruning. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from onyxia_py.catalog.models import CatalogSpec, Chart, ChartVersion, Dependency, VersionsMode

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


class InvalidIndex(ValueError):
    """An index that is not a Helm repository index."""


SortKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


def semver_key(version: str) -> SortKey:
    """A sort key ordering versions as SemVer 2 does (prereleases before their release).

    Versions that are not SemVer sort below every valid one.
    """
    match = _SEMVER.match(version.strip())
    if not match:
        return (-1, 0, 0, 0, ())
    major, minor, patch = (int(match.group(g) or 0) for g in ("major", "minor", "patch"))
    pre = match.group("pre")
    if pre is None:
        return (major, minor, patch, 1, ())
    parts: list[tuple[int, int | str]] = [
        (0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")
    ]
    return (major, minor, patch, 0, tuple(parts))


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def parse_entry(entry: dict[str, Any]) -> ChartVersion:
    """One index entry as a `ChartVersion`."""
    dependencies = tuple(
        Dependency(str(d.get("name", "")), str(d.get("version", "")), str(d.get("repository", "")))
        for d in entry.get("dependencies") or []
        if isinstance(d, dict)
    )
    annotations = entry.get("annotations") or {}
    return ChartVersion(
        name=str(entry["name"]),
        version=str(entry["version"]),
        app_version=str(entry.get("appVersion") or ""),
        description=str(entry.get("description") or ""),
        icon=str(entry.get("icon") or ""),
        home=str(entry.get("home") or ""),
        type=str(entry.get("type") or "application"),
        keywords=_strings(entry.get("keywords")),
        annotations={str(k): str(v) for k, v in annotations.items()},
        dependencies=dependencies,
        urls=_strings(entry.get("urls")),
        digest=str(entry.get("digest") or ""),
        created=str(entry.get("created") or ""),
        deprecated=bool(entry.get("deprecated", False)),
    )


def parse_index(document: Any) -> dict[str, tuple[ChartVersion, ...]]:
    """Every chart of an `index.yaml` (already YAML-decoded), versions newest first."""
    if not isinstance(document, dict) or not isinstance(document.get("entries"), dict):
        raise InvalidIndex("not a Helm repository index (no 'entries')")
    charts: dict[str, tuple[ChartVersion, ...]] = {}
    for name, entries in document["entries"].items():
        if not isinstance(entries, list):
            continue
        versions = [parse_entry(e) for e in entries if isinstance(e, dict) and "version" in e]
        versions = [v for v in versions if v.name == name or not v.name]
        if versions:
            charts[str(name)] = tuple(
                sorted(versions, key=lambda v: semver_key(v.version), reverse=True)
            )
    return charts


def prune(versions: tuple[ChartVersion, ...], spec: CatalogSpec) -> tuple[ChartVersion, ...]:
    """The versions a catalogue offers (input newest first), per `multipleServicesMode`."""
    if not versions:
        return ()
    mode = spec.multiple_services_mode
    if mode is VersionsMode.LATEST:
        return versions[:1]
    if mode is VersionsMode.MAX_NUMBER:
        return versions[: spec.max_number_of_versions]
    if mode is VersionsMode.SKIP_PATCHES:
        kept: list[ChartVersion] = []
        seen: set[tuple[int, int]] = set()
        for version in versions:
            key = semver_key(version.version)
            minor = (key[0], key[1])
            if minor not in seen:
                seen.add(minor)
                kept.append(version)
        return tuple(kept)
    return versions


def _annotations_match(wanted: dict[str, str], annotations: dict[str, str]) -> bool:
    return any(annotations.get(k) == v for k, v in wanted.items())


def offered(chart: str, versions: tuple[ChartVersion, ...], spec: CatalogSpec) -> bool:
    """Whether the catalogue lists `chart` at all (library charts never are)."""
    latest = versions[0]
    if latest.type == "library":
        return False
    if chart.lower() in {c.lower() for c in spec.excluded_charts}:
        return False
    keywords = {k.lower() for k in latest.keywords}
    if spec.include_keywords and not keywords & {k.lower() for k in spec.include_keywords}:
        return False
    if keywords & {k.lower() for k in spec.exclude_keywords}:
        return False
    if spec.include_annotations and not _annotations_match(
        spec.include_annotations, latest.annotations
    ):
        return False
    return not (
        spec.exclude_annotations
        and _annotations_match(spec.exclude_annotations, latest.annotations)
    )


def catalog_charts(
    index: dict[str, tuple[ChartVersion, ...]], spec: CatalogSpec
) -> tuple[Chart, ...]:
    """The charts a catalogue offers: highlighted first (in their order), then by name."""
    highlighted = [h.lower() for h in spec.highlighted_charts]
    charts = [
        Chart(name, prune(versions, spec), name.lower() in highlighted)
        for name, versions in index.items()
        if versions and offered(name, versions, spec)
    ]

    def order(chart: Chart) -> tuple[int, str]:
        lowered = chart.name.lower()
        rank = highlighted.index(lowered) if lowered in highlighted else len(highlighted)
        return rank, lowered

    return tuple(sorted(charts, key=order))


def resolve_dependency(
    dependency_name: str, constraint: str, index: dict[str, tuple[ChartVersion, ...]]
) -> ChartVersion | None:
    """The newest version of `dependency_name` in the same repository meeting `constraint`."""
    candidates = index.get(dependency_name, ())
    for candidate in candidates:
        if satisfies(candidate.version, constraint):
            return candidate
    return None


def satisfies(version: str, constraint: str) -> bool:
    """Whether `version` meets a Helm-style constraint (exact, x-ranges, ^, ~, comparisons)."""
    constraint = constraint.strip()
    if not constraint or constraint in ("*", "x"):
        return True
    return all(_satisfies_one(version, part) for part in _split(constraint))


def _split(constraint: str) -> Iterable[str]:
    return [p for p in re.split(r"[\s,]+", constraint) if p]


def _satisfies_one(version: str, term: str) -> bool:
    key = semver_key(version)
    op_match = re.match(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$", term)
    if not op_match:
        return False
    op, target = op_match.group(1) or "=", op_match.group(2)
    wildcard = re.match(r"^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$", target)
    if (
        op == "="
        and wildcard
        and (target.count(".") < 2 or any(p in "xX*" for p in target.split(".")[1:]))
    ):
        parts = [int(p) for p in target.lstrip("v").split(".") if p.isdigit()]
        return list(key[: len(parts)]) == parts and key[0] >= 0
    t = semver_key(target)
    if t[0] < 0:
        return False
    if op == "=":
        return key[:4] == t[:4] and key[4] == t[4]
    if op == ">=":
        return key >= t
    if op == ">":
        return key > t
    if op == "<=":
        return key <= t
    if op == "<":
        return key < t
    if op == "^":
        upper = (t[0] + 1, 0, 0, 0, ()) if t[0] > 0 else (0, t[1] + 1, 0, 0, ())
        return t <= key < upper
    upper = (t[0], t[1] + 1, 0, 0, ())
    return t <= key < upper
