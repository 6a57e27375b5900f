"""The pure parts of the image builder: recipe hashes, references, aliases, steps, archives."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from devtools import images
from devtools.images_build import _versions
from devtools.images_host import HostConfig
from devtools.images_oci import Layer, image_config, write_archive, write_layer
from devtools.images_recipes import IMAGES_DIR, Catalog, ImageConfig, RecipeError
from devtools.images_steps import layer_steps

BASE = """\
description = "test base"
suite = "bookworm"
packages = ["python3"]
files = { "/opt/onyxia-init.sh" = "init.sh" }
[config]
user = "1000:100"
cmd = ["/bin/bash"]
[config.env]
PATH = "/usr/bin:/bin"
LANG = "C.UTF-8"
"""
TOOL = """\
description = "a tool"
aliases = ["tool-gpu"]
venv = "/opt/venv"
venv_owner = "1000:100"
pip = ["tool==1.0"]
[config]
cmd = ["tool", "serve"]
[config.env]
PATH = "/opt/venv/bin:/usr/bin:/bin"
"""


def _folder(tmp_path: Path, **recipes: str) -> Path:
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    (folder / "init.sh").write_text('#!/bin/sh\nexec "$@"\n')
    (folder / "base.toml").write_text(BASE)
    (folder / "tool.toml").write_text(TOOL)
    for name, text in recipes.items():
        (folder / f"{name.replace('_', '-')}.toml").write_text(text)
    return folder


def test_hash_is_stable(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first, second = Catalog(folder).recipe("tool"), Catalog(folder).recipe("tool")
    assert first.hash == second.hash
    assert len(first.hash) == 64
    assert int(first.hash, 16) >= 0


def test_hash_changes_with_the_recipe(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = Catalog(folder).recipe("tool").hash
    (folder / "tool.toml").write_text(TOOL.replace("tool==1.0", "tool==1.1"))
    assert Catalog(folder).recipe("tool").hash != before


def test_hash_changes_with_the_base_and_its_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = Catalog(folder)
    (folder / "init.sh").write_text('#!/bin/sh\nset -e\nexec "$@"\n')
    after_init = Catalog(folder)
    assert after_init.recipe("base").hash != before.recipe("base").hash
    assert after_init.recipe("tool").hash != before.recipe("tool").hash
    (folder / "base.toml").write_text(BASE.replace('"python3"', '"python3", "tini"'))
    assert Catalog(folder).recipe("tool").hash != after_init.recipe("tool").hash


def test_hash_ignores_unrelated_recipes(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    before = Catalog(folder).recipe("tool").hash
    (folder / "other.toml").write_text('description = "other"\npip = ["x"]\nvenv = "/v"\n')
    assert Catalog(folder).recipe("tool").hash == before


def test_hash_chains_through_parents(tmp_path: Path) -> None:
    folder = _folder(tmp_path, mid='image = false\npip = ["a"]\nvenv = "/opt/venv"\n')
    (folder / "leaf.toml").write_text('parent = "mid"\npip = ["b"]\nvenv = "/opt/venv"\n')
    before = Catalog(folder)
    assert [r.name for r in before.chain("leaf")] == ["base", "mid", "leaf"]
    (folder / "mid.toml").write_text('image = false\npip = ["a", "c"]\nvenv = "/opt/venv"\n')
    assert Catalog(folder).recipe("leaf").hash != before.recipe("leaf").hash


def test_references_and_aliases(tmp_path: Path) -> None:
    catalog = Catalog(_folder(tmp_path))
    tag = catalog.recipe("tool").hash[:12]
    assert catalog.reference("tool") == f"localhost/onyxia/tool:{tag}"
    assert catalog.reference("tool-gpu") == f"localhost/onyxia/tool-gpu:{tag}"
    assert catalog.target("tool-gpu") == "tool"
    assert catalog.images() == ["tool", "tool-gpu"]
    assert images.reference("tool", folder=catalog.folder) == catalog.reference("tool")


def test_unknown_names_and_layer_only_recipes_are_not_images(tmp_path: Path) -> None:
    catalog = Catalog(_folder(tmp_path, mid='image = false\npip = ["a"]\nvenv = "/v"\n'))
    for name in ("nope", "base", "mid"):
        with pytest.raises(RecipeError):
            catalog.reference(name)


def test_an_alias_may_not_shadow_a_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, tool_gpu='pip = ["x"]\nvenv = "/v"\n')
    with pytest.raises(RecipeError, match="already a name"):
        Catalog(folder)


def test_parent_cycles_are_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path, a='parent = "b"\n', b='parent = "a"\n')
    with pytest.raises(RecipeError, match="cycle"):
        Catalog(folder)


def test_config_inherits_from_the_parent(tmp_path: Path) -> None:
    config = Catalog(_folder(tmp_path)).config("tool-gpu")
    assert config.user == "1000:100"
    assert config.cmd == ("tool", "serve")
    assert config.env == {"PATH": "/opt/venv/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_steps_follow_the_recipe(tmp_path: Path) -> None:
    recipe = Catalog(_folder(tmp_path)).recipe("tool")
    steps = layer_steps(recipe, {}, {})
    assert [label for label, _ in steps] == ["pip install", "cleanup"]
    pip, cleanup = steps[0][1], steps[1][1]
    assert "python3 -m venv /opt/venv" in pip
    assert "pip install -q tool==1.0" in pip
    # Only files not owned yet are chowned (a chown copies a parent layer's file up whole).
    assert "! -uid 1000 -o ! -gid 100" in cleanup


def test_the_repository_recipes() -> None:
    catalog = Catalog(IMAGES_DIR)
    assert set(catalog.images()) == {
        "jupyter",
        "jupyter-pytorch-gpu",
        "vscode",
        "vscode-pytorch-gpu",
        "mlflow",
        "label-studio",
    }
    assert catalog.target("jupyter-pytorch-gpu") == "jupyter"
    assert catalog.target("vscode-pytorch-gpu") == "vscode"
    for name in catalog.images():
        assert catalog.reference(name).startswith(f"localhost/onyxia/{name}:")
        chain = catalog.chain(name)
        assert chain[0].name == "base"
        assert "/opt/onyxia-init.sh" in chain[0].files
    for ide in ("jupyter", "vscode", "mlflow"):
        assert catalog.config(ide).user == "1000:100"
        assert "/opt/venv/bin" in catalog.config(ide).env["PATH"]
    assert catalog.config("label-studio").user == "1001:1001"
    assert catalog.config("label-studio").cmd == ("label-studio", "start", "--no-browser")


def test_warm_build_is_a_no_op(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cache = tmp_path / "cache"
    catalog = Catalog(folder)
    archive = cache / "archives" / f"tool-{catalog.recipe('tool').tag}.tar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"")
    lines: list[str] = []
    built = images.build(["tool-gpu"], folder=folder, cache=cache, out=lines.append)
    assert built == {"tool-gpu": images.BuiltImage(catalog.reference("tool-gpu"), archive)}
    index = json.loads((cache / "index.json").read_text())
    assert index["tool-gpu"] == {
        "reference": catalog.reference("tool-gpu"),
        "archive": str(archive),
    }
    assert "all cached" in lines[-1]


def test_host_config_is_written_for_the_chroot(tmp_path: Path) -> None:
    ca = tmp_path / "host-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    host = HostConfig(
        ca, {"index-url": "https://pypi.example/simple"}, {"registry": "https://npm.example/"}
    )
    env = host.write(tmp_path, "/tmp/onyxia-build")
    assert (tmp_path / "ca.crt").read_text() == ca.read_text()
    assert "index-url = https://pypi.example/simple" in (tmp_path / "pip.conf").read_text()
    npmrc = (tmp_path / "npmrc").read_text()
    assert "registry=https://npm.example/" in npmrc
    assert "cafile=/tmp/onyxia-build/ca.crt" in npmrc
    assert env["PIP_CERT"] == env["SSL_CERT_FILE"] == "/tmp/onyxia-build/ca.crt"
    assert env["PIP_CONFIG_FILE"] == "/tmp/onyxia-build/pip.conf"


def test_layer_and_archive(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "opt" / "tool").mkdir(parents=True)
    (tree / "opt" / "tool" / "run").write_text("#!/bin/sh\n")
    os.link(tree / "opt" / "tool" / "run", tree / "opt" / "tool" / "again")
    (tree / "opt" / "link").symlink_to("tool/run")
    (tree / "dev").mkdir()
    (tree / "dev" / "skipped").write_text("")
    blobs = tmp_path / "blobs"
    layer = write_layer(tree, blobs, overlay=False, skip_contents=("dev",))
    assert (blobs / "sha256" / layer.digest.removeprefix("sha256:")).stat().st_size == layer.size
    assert Layer.from_json(layer.to_json()) == layer
    config = image_config(ImageConfig(user="1000:100", cmd=("x",)), [layer], ["h"], {"k": "v"})
    assert config["rootfs"]["diff_ids"] == [layer.diff_id]
    assert config["config"]["User"] == "1000:100"
    archive = tmp_path / "image.tar"
    refs = ["localhost/onyxia/tool:abc", "localhost/onyxia/tool-gpu:abc"]
    write_archive(archive, refs, config, [layer], blobs)
    with tarfile.open(archive) as tar:
        index_file = tar.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
        names = [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]]
        assert names == refs
        assert len({m["digest"] for m in index["manifests"]}) == 1
        assert f"blobs/sha256/{layer.digest.removeprefix('sha256:')}" in tar.getnames()


def test_overlay_whiteouts_become_oci_whiteouts(tmp_path: Path) -> None:
    # Building images needs root anyway; without it this capability is missing, not optional.
    if os.geteuid() != 0:
        pytest.fail("whiteouts need mknod and trusted xattrs: run the tests as root")
    upper = tmp_path / "upper"
    (upper / "etc" / "gone-dir").mkdir(parents=True)
    os.mknod(upper / "etc" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    os.setxattr(upper / "etc" / "gone-dir", "trusted.overlay.opaque", b"y")
    layer = write_layer(upper, tmp_path / "blobs", overlay=True)
    blob = tmp_path / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")
    names = _layer_names(blob)
    assert "etc/.wh.gone" in names
    assert "etc/gone-dir/.wh..wh..opq" in names
    assert "etc/gone" not in names


def _layer_names(blob: Path) -> list[str]:
    zstd = blob.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    tool = ["zstd", "-dc"] if zstd else ["gzip", "-dc"]
    raw = subprocess.run([*tool, str(blob)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return tar.getnames()


def test_the_vscode_steps_build_then_purge_the_compilers() -> None:
    catalog = Catalog(IMAGES_DIR)
    recipe = catalog.recipe("vscode")
    tarballs = {u.package: f"{u.package.replace('@', '-')}.tgz" for u in recipe.unpack}
    steps = dict(layer_steps(recipe, tarballs, {}))
    assert list(steps) == ["apt install", "unpack", "npm install", "run", "apt purge", "cleanup"]
    assert "build-essential" in steps["apt install"]
    assert "build-essential" in steps["apt purge"]
    assert "ln -sfn ../lib/node_modules/npm/bin/npm-cli.js /opt/node/bin/npm" in steps["unpack"]
    assert recipe.build_env == {"npm_config_nodedir": "/opt/node"}


def test_old_versions_are_matched_by_exact_name(tmp_path: Path) -> None:
    for name in ("python-0123456789ab", "python-data-0123456789ab", "python-old", "python-ffff"):
        (tmp_path / name).mkdir()
    assert [p.name for p in _versions(tmp_path, "python", "")] == ["python-0123456789ab"]
