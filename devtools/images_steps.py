"""The shell steps that turn a recipe into a layer. Pure: each step is a (label, script) pair."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from devtools.images_chroot import BUILD_DIR, CACHE_DIR
from devtools.images_recipes import Recipe

__all__ = ["CLEANUP", "Step", "file_name", "layer_steps"]

Step = tuple[str, str]

# Caches and logs the package tools leave behind; never part of an image.
CLEANUP = """\
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \\
  /var/cache/apt/archives/partial/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \\
  /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /root/.cache /root/.npm
"""
APT_CA = f"-o Acquire::https::CAInfo={BUILD_DIR}/ca.crt"


def _words(items: tuple[str, ...]) -> str:
    return " ".join(shlex.quote(i) for i in items)


def file_name(dest: str) -> str:
    """The name under which a recipe file (dest in the image) is staged in the build dir."""
    return dest.strip("/").replace("/", "__")


def _files(recipe: Recipe, modes: Mapping[str, int]) -> str:
    lines = []
    for dest in sorted(recipe.files):
        src = f"{BUILD_DIR}/files/{file_name(dest)}"
        mode = f"{modes.get(dest, 0o644):04o}"
        lines.append(f"install -D -m {mode} {shlex.quote(src)} {shlex.quote(dest)}")
    return "\n".join(lines) + "\n"


def _apt(recipe: Recipe) -> str:
    packages = _words((*recipe.packages, *recipe.build_packages))
    return (
        f"apt-get {APT_CA} update -qq\n"
        f"apt-get {APT_CA} install -y -qq --no-install-recommends {packages} >/dev/null\n"
    )


def _unpack(recipe: Recipe, tarballs: Mapping[str, str]) -> str:
    lines = []
    for item in recipe.unpack:
        tarball = shlex.quote(f"{CACHE_DIR}/npm-pack/{tarballs[item.package]}")
        members = _words(tuple(f"package/{p}" for p in item.paths))
        into = shlex.quote(item.into)
        lines.append(f"mkdir -p {into}")
        lines.append(f"tar -xzf {tarball} -C {into} --strip-components=1 --no-same-owner {members}")
    for link, target in sorted(recipe.links.items()):
        lines.append(f"ln -sfn {shlex.quote(target)} {shlex.quote(link)}")
    return "\n".join(lines) + "\n"


def _pip(recipe: Recipe) -> str:
    venv = shlex.quote(recipe.venv)
    return (
        f"[ -x {venv}/bin/python ] || python3 -m venv {venv}\n"
        f"{venv}/bin/python -m pip install -q --upgrade pip\n"
        f"{venv}/bin/python -m pip install -q {_words(recipe.pip)}\n"
    )


def _npm(recipe: Recipe) -> str:
    prefix = shlex.quote(recipe.npm_prefix)
    return f"npm install --global --prefix {prefix} --no-audit --no-fund {_words(recipe.npm)}\n"


def _own(path: str, owner: str) -> str:
    # Only what is not owned yet: a chown of a parent layer's file would copy it up whole.
    uid, _, gid = owner.partition(":")
    where = shlex.quote(path)
    if not (uid.isdigit() and gid.isdigit()):
        raise ValueError(f"venv_owner {owner!r} must be numeric UID:GID")
    return f"find {where} \\( ! -uid {uid} -o ! -gid {gid} \\) -exec chown -h {uid}:{gid} {{}} +\n"


def _purge(recipe: Recipe) -> str:
    return f"apt-get purge -y -qq --autoremove {_words(recipe.build_packages)} >/dev/null\n"


def layer_steps(
    recipe: Recipe, tarballs: Mapping[str, str], file_modes: Mapping[str, int]
) -> list[Step]:
    """The steps that build a recipe's layer, in order; tarballs maps npm specs to file names."""
    steps: list[Step] = []
    if recipe.packages or recipe.build_packages:
        steps.append(("apt install", _apt(recipe)))
    if recipe.files:
        steps.append(("files", _files(recipe, file_modes)))
    if recipe.unpack or recipe.links:
        steps.append(("unpack", _unpack(recipe, tarballs)))
    if recipe.pip:
        if not recipe.venv:
            raise ValueError(f"images/{recipe.name}.toml: pip needs venv")
        steps.append(("pip install", _pip(recipe)))
    if recipe.npm:
        if not recipe.npm_prefix:
            raise ValueError(f"images/{recipe.name}.toml: npm needs npm_prefix")
        steps.append(("npm install", _npm(recipe)))
    if recipe.run:
        steps.append(("run", recipe.run))
    if recipe.build_packages:
        steps.append(("apt purge", _purge(recipe)))
    cleanup = CLEANUP
    if recipe.venv and recipe.venv_owner:
        cleanup += _own(recipe.venv, recipe.venv_owner)
    if recipe.remove:
        # Unquoted on purpose: the recipe's entries are shell globs.
        cleanup += f"rm -rf {' '.join(recipe.remove)}\n"
    steps.append(("cleanup", cleanup))
    return steps
