"""Which charts a package carries under `charts/`: as nested packages or unpacked folders, in a
`.tgz` or a chart directory; deeper levels are the sub-charts' own business."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from onyxia_py.errors import Invalid
from onyxia_py.helm.archive import vendored


def chart_yaml(name: str, version: str) -> bytes:
    return f"apiVersion: v2\nname: {name}\nversion: {version}\n".encode()


def tgz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return out.getvalue()


def test_a_package_carrying_packages_and_folders(tmp_path: Path) -> None:
    library = tgz({"lib/Chart.yaml": chart_yaml("lib", "0.3.0")})
    package = tmp_path / "app-1.0.0.tgz"
    package.write_bytes(
        tgz(
            {
                "app/Chart.yaml": chart_yaml("app", "1.0.0"),
                "app/charts/lib-0.3.0.tgz": library,
                "app/charts/sidecar/Chart.yaml": chart_yaml("sidecar", "2.1.0"),
                "app/charts/sidecar/charts/deeper/Chart.yaml": chart_yaml("deeper", "1.0.0"),
                "app/charts/README.md": b"not a chart",
            }
        )
    )
    assert vendored(package) == {"lib": "0.3.0", "sidecar": "2.1.0"}


def test_a_package_carrying_nothing(tmp_path: Path) -> None:
    package = tmp_path / "app-1.0.0.tgz"
    package.write_bytes(tgz({"app/Chart.yaml": chart_yaml("app", "1.0.0")}))
    assert vendored(package) == {}


def test_a_chart_folder(tmp_path: Path) -> None:
    chart = tmp_path / "app"
    (chart / "charts" / "sidecar").mkdir(parents=True)
    (chart / "Chart.yaml").write_bytes(chart_yaml("app", "1.0.0"))
    (chart / "charts" / "sidecar" / "Chart.yaml").write_bytes(chart_yaml("sidecar", "2.1.0"))
    (chart / "charts" / "lib-0.3.0.tgz").write_bytes(
        tgz({"lib/Chart.yaml": chart_yaml("lib", "0.3.0")})
    )
    assert vendored(chart) == {"lib": "0.3.0", "sidecar": "2.1.0"}
    assert vendored(tmp_path / "app" / "charts" / "sidecar") == {}


def test_a_broken_nested_package_is_invalid(tmp_path: Path) -> None:
    package = tmp_path / "app-1.0.0.tgz"
    package.write_bytes(
        tgz({"app/Chart.yaml": chart_yaml("app", "1.0.0"), "app/charts/x.tgz": b"garbage"})
    )
    with pytest.raises(Invalid, match=r"app/charts/x.tgz is not a readable chart package"):
        vendored(package)
