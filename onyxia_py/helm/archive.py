"""Chart packages on disk: read a chart's values and schema, and assemble a renderable chart
with its dependencies vendored, without any network."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from onyxia_py.errors import Invalid

# A chart package is small; refuse archives that would unpack into something huge.
MAX_MEMBER_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ChartContents:
    """The top-level chart's metadata, values, schema and README (sub-charts ignored)."""

    metadata: dict[str, Any]
    values: dict[str, Any]
    schema: dict[str, Any] | None
    readme: str


def _yaml_mapping(text: str, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise Invalid(f"{what} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise Invalid(f"{what} must be a mapping")
    return loaded


def _schema(text: str | None, what: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise Invalid(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise Invalid(f"{what} must be a JSON object")
    return loaded


def _contents(files: dict[str, str], where: str) -> ChartContents:
    if "Chart.yaml" not in files:
        raise Invalid(f"{where} has no Chart.yaml")
    return ChartContents(
        metadata=_yaml_mapping(files["Chart.yaml"], f"{where}/Chart.yaml"),
        values=_yaml_mapping(files.get("values.yaml", ""), f"{where}/values.yaml"),
        schema=_schema(files.get("values.schema.json"), f"{where}/values.schema.json"),
        readme=files.get("README.md", ""),
    )


_WANTED = ("Chart.yaml", "values.yaml", "values.schema.json", "README.md")


def read_contents(chart: Path) -> ChartContents:
    """The contents of a chart directory or `.tgz` package."""
    if chart.is_dir():
        files = {
            name: (chart / name).read_text(encoding="utf-8")
            for name in _WANTED
            if (chart / name).is_file()
        }
        return _contents(files, chart.name)
    return read_archive(chart.read_bytes(), chart.name)


def read_archive(data: bytes, where: str) -> ChartContents:
    """The contents of a `.tgz` chart package held in memory."""
    files: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                parts = member.name.split("/")
                # Only <chart>/<file>: sub-charts under <chart>/charts/ are not the form's.
                if len(parts) == 2 and parts[1] in _WANTED and member.isfile():
                    if member.size > MAX_MEMBER_BYTES:
                        raise Invalid(f"{where}: {member.name} is too large")
                    extracted = archive.extractfile(member)
                    if extracted is not None:
                        files[parts[1]] = extracted.read().decode("utf-8")
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise Invalid(f"{where} is not a readable chart package: {exc}") from None
    return _contents(files, where)


def vendored(chart: Path) -> dict[str, str]:
    """The charts a chart directory or `.tgz` package carries under `charts/` (as packages or
    folders): name -> version. Helm uses these as they are, whatever the index says."""
    if chart.is_dir():
        found: dict[str, str] = {}
        folder = chart / "charts"
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            folder_chart = entry.is_dir() and (entry / "Chart.yaml").is_file()
            if folder_chart or (entry.is_file() and entry.name.endswith(".tgz")):
                _add(found, read_contents(entry).metadata)
        return found
    return _vendored_in_archive(chart)


def _vendored_in_archive(package: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        with tarfile.open(package, mode="r:gz") as archive:
            for member in archive.getmembers():
                parts = member.name.split("/")
                if len(parts) < 3 or parts[1] != "charts" or not member.isfile():
                    continue
                archived = len(parts) == 3 and parts[2].endswith(".tgz")
                unpacked = len(parts) == 4 and parts[3] == "Chart.yaml"
                if not (archived or unpacked):
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    raise Invalid(f"{package.name}: {member.name} is too large")
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                data = extracted.read()
                if archived:
                    _add(found, read_archive(data, f"{package.name}: {member.name}").metadata)
                else:
                    text = data.decode("utf-8")
                    _add(found, _yaml_mapping(text, f"{package.name}: {member.name}"))
    except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise Invalid(f"{package.name} is not a readable chart package: {exc}") from None
    return found


def _add(found: dict[str, str], metadata: dict[str, Any]) -> None:
    if metadata.get("name"):
        found[str(metadata["name"])] = str(metadata.get("version") or "")


def unpack(package: Path, destination: Path) -> Path:
    """Unpack a chart package (or copy a chart dir) into `destination`; the chart's folder."""
    destination.mkdir(parents=True, exist_ok=True)
    if package.is_dir():
        target = destination / package.name
        shutil.copytree(package, target, dirs_exist_ok=True)
        return target
    try:
        with tarfile.open(package, mode="r:gz") as archive:
            top = {m.name.split("/")[0] for m in archive.getmembers()}
            if len(top) != 1:
                raise Invalid(f"{package.name} must hold exactly one chart folder")
            # The 'data' filter refuses absolute paths, '..', links out of the tree, devices.
            archive.extractall(destination, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise Invalid(f"{package.name} cannot be unpacked: {exc}") from None
    return destination / top.pop()


def assemble(chart: Path, dependencies: list[Path], destination: Path) -> Path:
    """A renderable chart folder: `chart` unpacked with `dependencies` vendored in `charts/`.

    Built in a temporary sibling and renamed into place, so readers never see half a chart.
    """
    if destination.exists():
        return destination
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    folder = unpack(chart, staging)
    vendored = folder / "charts"
    vendored.mkdir(exist_ok=True)
    for dependency in dependencies:
        if dependency.is_dir():
            shutil.copytree(dependency, vendored / dependency.name, dirs_exist_ok=True)
        else:
            shutil.copy2(dependency, vendored / dependency.name)
    try:
        folder.rename(destination)
    except OSError:
        if not destination.exists():
            raise
    shutil.rmtree(staging, ignore_errors=True)
    return destination
