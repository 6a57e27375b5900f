"""OCI image layers and archives, written by hand (no umoci, no registry).

A layer is a tar of a tree: a whole root filesystem (the base) or an overlay upper directory,
whose whiteouts (0/0 character devices, `trusted.overlay.opaque` directories) become OCI
`.wh.` entries. An archive is an OCI image layout in a tar, one index entry per image name with
`io.containerd.image.name` set, so `ctr images import` names the images (pitfall 3).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from devtools.images_recipes import ImageConfig

__all__ = ["Layer", "image_config", "write_archive", "write_layer"]

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OPAQUE = "trusted.overlay.opaque"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le"}


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob: its digest, uncompressed digest (diff id), size and type."""

    digest: str
    diff_id: str
    size: int
    media_type: str

    def to_json(self) -> str:
        """The layer as JSON (stored beside cached trees)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Layer:
        """A layer from its JSON form."""
        data = json.loads(text)
        return cls(data["digest"], data["diff_id"], int(data["size"]), data["media_type"])


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what it forwards."""

    def __init__(self, sink: IO[bytes]) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.sink.write(view)
        return len(view)


def _entries(
    root: Path, skip_contents: frozenset[str], rel: str = ""
) -> Iterator[tuple[str, Path]]:
    with os.scandir(root / rel if rel else root) as it:
        names = sorted(e.name for e in it)
    for name in names:
        path_rel = f"{rel}/{name}" if rel else name
        path = root / path_rel
        yield path_rel, path
        if path.is_dir() and not path.is_symlink() and path_rel not in skip_contents:
            yield from _entries(root, skip_contents, path_rel)


def _is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _add_tree(tar: tarfile.TarFile, root: Path, overlay: bool, skip: frozenset[str]) -> None:
    for rel, path in _entries(root, skip):
        st = path.lstat()
        if stat.S_ISSOCK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            continue
        parent, _, name = rel.rpartition("/")
        if overlay and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            tar.addfile(tarfile.TarInfo(f"{parent}/.wh.{name}" if parent else f".wh.{name}"))
            continue
        info = tar.gettarinfo(str(path), rel)
        info.uname = info.gname = ""
        if info.isreg():
            with path.open("rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
        if overlay and info.isdir() and _is_opaque(path):
            tar.addfile(tarfile.TarInfo(f"{rel}/.wh..wh..opq"))


def _compressor() -> tuple[list[str], str]:
    if shutil.which("zstd"):
        return ["zstd", "-q", "-3", "-T0", "-c"], MEDIA_ZSTD
    return ["gzip", "-n", "-6", "-c"], MEDIA_GZIP


def sha256_file(path: Path) -> str:
    """The sha256 digest of a file, as `sha256:<hex>`."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return f"sha256:{h.hexdigest()}"


def write_layer(
    tree: Path, blobs: Path, *, overlay: bool, skip_contents: Sequence[str] = ()
) -> Layer:
    """Tar and compress a tree into the blob directory (blobs/sha256/...); return the layer."""
    (blobs / "sha256").mkdir(parents=True, exist_ok=True)
    command, media_type = _compressor()
    # A unique name: layers of several images may be packed at once in one process.
    with tempfile.NamedTemporaryFile(dir=blobs, prefix=".layer-", delete=False) as out:
        tmp = Path(out.name)
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out)
        assert proc.stdin is not None
        hashing = _Hashing(proc.stdin)
        try:
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, tree, overlay, frozenset(skip_contents))
        finally:
            proc.stdin.close()
            code = proc.wait()
    if code != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{command[0]} failed with exit code {code}")
    digest = sha256_file(tmp)
    tmp.replace(blobs / "sha256" / digest.removeprefix("sha256:"))
    return Layer(digest, f"sha256:{hashing.sha.hexdigest()}", _blob_size(blobs, digest), media_type)


def _blob_size(blobs: Path, digest: str) -> int:
    """The size of a blob in the blob directory."""
    return (blobs / "sha256" / digest.removeprefix("sha256:")).stat().st_size


def architecture() -> str:
    """This machine's architecture in OCI terms (amd64, arm64...)."""
    machine = platform.machine()
    return _ARCH.get(machine, machine)


def image_config(
    config: ImageConfig, layers: Sequence[Layer], history: Sequence[str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The OCI image configuration document."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {"Env": [f"{k}={v}" for k, v in config.env.items()]}
    if config.user:
        body["User"] = config.user
    if config.workdir:
        body["WorkingDir"] = config.workdir
    if config.entrypoint is not None:
        body["Entrypoint"] = list(config.entrypoint)
    if config.cmd is not None:
        body["Cmd"] = list(config.cmd)
    if config.ports:
        body["ExposedPorts"] = {p: {} for p in config.ports}
    body["Labels"] = {**config.labels, **labels}
    return {
        "created": now,
        "architecture": architecture(),
        "os": "linux",
        "config": body,
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": now, "created_by": h} for h in history],
    }


def _json_blob(data: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return raw, {"digest": f"sha256:{hashlib.sha256(raw).hexdigest()}", "size": len(raw)}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_archive(
    path: Path, refs: Sequence[str], config: Mapping[str, Any], layers: Sequence[Layer], blobs: Path
) -> None:
    """Write an OCI image layout tar holding one image under every reference in refs."""
    config_raw, config_desc = _json_blob(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, **config_desc},
        "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in layers],
    }
    manifest_raw, manifest_desc = _json_blob(manifest)
    platform_ = {"architecture": config["architecture"], "os": config["os"]}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                **manifest_desc,
                "platform": platform_,
                "annotations": {
                    "io.containerd.image.name": ref,
                    "org.opencontainers.image.ref.name": ref.rpartition(":")[2],
                },
            }
            for ref in refs
        ],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())
        for raw, desc in ((config_raw, config_desc), (manifest_raw, manifest_desc)):
            _add_bytes(tar, f"blobs/sha256/{desc['digest'].removeprefix('sha256:')}", raw)
        for layer in layers:
            hex_ = layer.digest.removeprefix("sha256:")
            tar.add(blobs / "sha256" / hex_, f"blobs/sha256/{hex_}", recursive=False)
    tmp.replace(path)
