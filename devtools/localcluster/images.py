"""Offline images for real nodes: the pause (sandbox) image and a test web server, built from
devtools/pause with the machine's Go, written as OCI archives for ``ctr images import``."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .binaries import REPO_ROOT, cache_dir
from .errors import ClusterError

SOURCE = REPO_ROOT / "devtools" / "pause"
PAUSE_IMAGE = "onyxia.local/pause:1"
WEBTEST_IMAGE = "onyxia.local/webtest:1"


class ImageError(ClusterError):
    """An image could not be built or imported."""


@dataclass(frozen=True)
class ImageFile:
    """One file of an image's single layer."""

    path: str  # inside the image, without a leading slash
    source: Path
    mode: int = 0o755


def _source_hash() -> str:
    h = hashlib.sha256()
    for f in sorted(SOURCE.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(SOURCE)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_commands() -> Path:
    """Build devtools/pause/cmd/* once per source version; return the directory of binaries."""
    out = cache_dir() / f"images-{_source_hash()}"
    if (out / "pause").is_file() and (out / "webtest").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOTOOLCHAIN="local", GOFLAGS="-mod=mod")
    proc = subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", f"{out}/", "./cmd/..."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ImageError(f"go build in {SOURCE} failed: {proc.stderr.strip()[-2000:]}")
    return out


def _layer(files: list[ImageFile]) -> bytes:
    """An uncompressed, reproducible tar of the files (root-owned, mtime 0), with /tmp."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tmp = tarfile.TarInfo("tmp")
        tmp.type, tmp.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(tmp)
        for f in files:
            data = f.source.read_bytes()
            info = tarfile.TarInfo(f.path)
            info.size, info.mode = len(data), f.mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def write_oci_archive(
    out: Path, name: str, files: list[ImageFile], entrypoint: list[str], user: str = ""
) -> Path:
    """Write a one-layer linux/amd64 image as an OCI archive named by its index annotation."""
    blobs: dict[str, bytes] = {}
    raw = _layer(files)
    layer = gzip.compress(raw, mtime=0)
    layer_digest, layer_size = _blob(blobs, layer)
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created_by": "onyxia-py devtools/localcluster/images.py"}],
    }
    config_digest, config_size = _blob(blobs, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": layer_digest,
                "size": layer_size,
            }
        ],
    }
    manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest).encode())
    # The full name in io.containerd.image.name: without it `ctr images import` invents an
    # import-<date> name that the CRI then resolves the image through.
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    members = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{d.split(':', 1)[1]}": b for d, b in blobs.items()},
    }
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out


def builtin_archives() -> dict[str, Path]:
    """Build (once) the pause and webtest images; return {image name: OCI archive}."""
    bins = build_commands()
    pause = bins / "pause.oci.tar"
    if not pause.is_file():
        write_oci_archive(pause, PAUSE_IMAGE, [ImageFile("pause", bins / "pause")], ["/pause"])
    web = bins / "webtest.oci.tar"
    if not web.is_file():
        write_oci_archive(
            web, WEBTEST_IMAGE, [ImageFile("webtest", bins / "webtest")], ["/webtest"], "65534"
        )
    return {PAUSE_IMAGE: pause, WEBTEST_IMAGE: web}


def import_archive(ctr: Path, socket: Path, archive: Path) -> None:
    """Import an OCI or Docker archive into a containerd's k8s.io namespace (and unpack it)."""
    base = [str(ctr), "--address", str(socket), "--namespace", "k8s.io"]
    proc = subprocess.run(
        [*base, "images", "import", str(archive)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise ImageError(f"ctr images import {archive} failed: {proc.stderr.strip()[-2000:]}")
