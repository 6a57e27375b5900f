"""OCI archives written by hand: a valid layout whose index names the image for containerd."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

from devtools.localcluster.images import ImageFile, write_oci_archive


def test_archive_is_a_named_one_layer_oci_image(tmp_path: Path) -> None:
    binary = tmp_path / "tool"
    binary.write_bytes(b"#!fake binary")
    out = write_oci_archive(
        tmp_path / "img.tar", "onyxia.local/tool:1", [ImageFile("tool", binary)], ["/tool"], "1000"
    )
    with tarfile.open(out) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entry = json.loads(files["index.json"])["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == "onyxia.local/tool:1"
    assert entry["platform"] == {"architecture": "amd64", "os": "linux"}

    def blob(digest: str) -> bytes:
        data = files[f"blobs/sha256/{digest.split(':')[1]}"]
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        return data

    manifest = json.loads(blob(entry["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/tool"]
    assert config["config"]["User"] == "1000"
    layer = gzip.decompress(blob(manifest["layers"][0]["digest"]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        member = tar.getmember("tool")
        assert (member.mode, member.uid, member.mtime) == (0o755, 0, 0)
        assert tar.getmember("tmp").mode == 0o1777
