"""Catalogue definitions from YAML files and settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from onyxia_py.catalog.models import CatalogSpec

log = logging.getLogger(__name__)


def _is_local(location: str) -> bool:
    return not location.startswith(("http://", "https://", "oci://"))


def parse_spec(raw: dict[str, Any], base_dir: Path) -> CatalogSpec:
    """A spec from a mapping; a relative folder location is made relative to `base_dir`."""
    spec = CatalogSpec.model_validate(raw)
    location = spec.location.removeprefix("file://")
    if _is_local(spec.location) and not Path(location).is_absolute():
        spec = spec.model_copy(update={"location": str((base_dir / location).resolve())})
    return spec


def _documents(path: Path) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(loaded, dict) and isinstance(loaded.get("catalogs"), list):
        loaded = loaded["catalogs"]
    if isinstance(loaded, dict):
        loaded = [loaded]
    if not isinstance(loaded, list):
        raise ValueError("expected a catalogue, a list of them, or 'catalogs: [...]'")
    return [d for d in loaded if isinstance(d, dict)]


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            found.append(path)
        else:
            log.warning("catalogue path %s does not exist", path)
    return found


def load_specs(paths: list[Path], inline: list[dict[str, Any]], cwd: Path) -> list[CatalogSpec]:
    """Every valid catalogue of the files and settings; an invalid one is logged and skipped."""
    specs: dict[str, CatalogSpec] = {}
    sources: list[tuple[str, dict[str, Any], Path]] = []
    for file in _files(paths):
        try:
            sources.extend((str(file), doc, file.parent) for doc in _documents(file))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            log.error("catalogue file %s is unusable: %s", file, exc)
    sources.extend(("settings", doc, cwd) for doc in inline)
    for origin, raw, base in sources:
        try:
            spec = parse_spec(raw, base)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_input=False)
            )
            log.error("catalogue %r in %s is invalid: %s", raw.get("id"), origin, reasons)
            continue
        if spec.id in specs:
            log.error("catalogue id %r in %s is declared twice: ignored", spec.id, origin)
            continue
        specs[spec.id] = spec
    return list(specs.values())
