"""Image recipes (images/*.toml): loading, hashing and image references. Pure: no build here.

A recipe is one layer on top of its parent (`base.toml` is the root of every chain). Its hash
covers the builder version, its parent's hash and its own file's bytes, so editing a recipe
rebuilds it and everything derived from it, and nothing else.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BASE",
    "BUILDER_VERSION",
    "IMAGES_DIR",
    "REGISTRY_PREFIX",
    "Catalog",
    "ImageConfig",
    "Recipe",
    "RecipeError",
    "Unpack",
]

BUILDER_VERSION = "1"
BASE = "base"
REGISTRY_PREFIX = "localhost/onyxia"
IMAGES_DIR = Path(__file__).resolve().parents[1] / "images"


class RecipeError(ValueError):
    """A recipe is missing, malformed or refers to an unknown recipe."""


@dataclass(frozen=True)
class ImageConfig:
    """The OCI image configuration fields a recipe sets (empty = inherit from the parent)."""

    user: str = ""
    workdir: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def over(self, parent: ImageConfig) -> ImageConfig:
        """This configuration with the parent's values where this one sets none."""
        return ImageConfig(
            user=self.user or parent.user,
            workdir=self.workdir or parent.workdir,
            entrypoint=parent.entrypoint if self.entrypoint is None else self.entrypoint,
            cmd=parent.cmd if self.cmd is None else self.cmd,
            env={**parent.env, **self.env},
            ports=self.ports or parent.ports,
            labels={**parent.labels, **self.labels},
        )


@dataclass(frozen=True)
class Unpack:
    """An npm package tarball unpacked as files (e.g. a Node.js binary distribution)."""

    package: str
    into: str
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """One recipe: what its layer installs and the image configuration it sets."""

    name: str
    hash: str
    parent: str | None
    description: str = ""
    image: bool = True
    aliases: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    unpack: tuple[Unpack, ...] = ()
    links: Mapping[str, str] = field(default_factory=dict)
    venv: str = ""
    venv_owner: str = ""
    pip: tuple[str, ...] = ()
    npm_prefix: str = ""
    npm: tuple[str, ...] = ()
    run: str = ""
    build_env: Mapping[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()
    config: ImageConfig = field(default_factory=ImageConfig)
    suite: str = ""
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """The image tag: the first 12 hex digits of the recipe hash."""
        return self.hash[:12]

    def reference(self, name: str | None = None) -> str:
        """The image reference of this recipe, or of one of its aliases."""
        return f"{REGISTRY_PREFIX}/{name or self.name}:{self.tag}"


def _strs(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecipeError(f"{where}: {key} must be a list of strings")
    return tuple(value)


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise RecipeError(f"{where}: {key} must be a string")
    return value


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise RecipeError(f"{where}: {key} must be a table")
    return value


def _str_map(data: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    table = _table(data, key, where)
    if not all(isinstance(v, str) for v in table.values()):
        raise RecipeError(f"{where}: {key} values must be strings")
    return dict(table)


def _optional_strs(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    return _strs(data, key, where) if key in data else None


def _config(data: Mapping[str, Any], where: str) -> ImageConfig:
    table = _table(data, "config", where)
    return ImageConfig(
        user=_str(table, "user", where),
        workdir=_str(table, "workdir", where),
        entrypoint=_optional_strs(table, "entrypoint", where),
        cmd=_optional_strs(table, "cmd", where),
        env=_str_map(table, "env", where),
        ports=_strs(table, "ports", where),
        labels=_str_map(table, "labels", where),
    )


def _unpacks(data: Mapping[str, Any], where: str) -> tuple[Unpack, ...]:
    items = data.get("unpack", [])
    if not isinstance(items, list):
        raise RecipeError(f"{where}: unpack must be a list of tables")
    result = []
    for item in items:
        if not isinstance(item, dict):
            raise RecipeError(f"{where}: unpack must be a list of tables")
        result.append(
            Unpack(
                package=_str(item, "package", where),
                into=_str(item, "into", where),
                paths=_strs(item, "paths", where),
            )
        )
    return tuple(result)


def digest(*parts: bytes) -> str:
    """The sha256 hex digest of the parts, each length-prefixed so boundaries count."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def parse(name: str, text: bytes, parent_hash: str, extra: bytes = b"") -> Recipe:
    """Parse one recipe file's bytes; its hash chains the parent's hash and any extra bytes."""
    where = f"images/{name}.toml"
    try:
        data = tomllib.loads(text.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{where}: {exc}") from exc
    parent = None if name == BASE else (_str(data, "parent", where) or BASE)
    image = data.get("image", name != BASE)
    if not isinstance(image, bool):
        raise RecipeError(f"{where}: image must be true or false")
    return Recipe(
        name=name,
        hash=digest(b"onyxia-images", BUILDER_VERSION.encode(), parent_hash.encode(), text, extra),
        parent=parent,
        description=_str(data, "description", where),
        image=image,
        aliases=_strs(data, "aliases", where),
        packages=_strs(data, "packages", where),
        build_packages=_strs(data, "build_packages", where),
        unpack=_unpacks(data, where),
        links=_str_map(data, "links", where),
        venv=_str(data, "venv", where),
        venv_owner=_str(data, "venv_owner", where),
        pip=_strs(data, "pip", where),
        npm_prefix=_str(data, "npm_prefix", where),
        npm=_strs(data, "npm", where),
        run=_str(data, "run", where),
        build_env=_str_map(data, "build_env", where),
        remove=_strs(data, "remove", where),
        config=_config(data, where),
        suite=_str(data, "suite", where),
        files=_str_map(data, "files", where),
    )


class Catalog:
    """All recipes of an images/ folder, with their hashes, references and aliases."""

    def __init__(self, folder: Path = IMAGES_DIR) -> None:
        self.folder = folder
        self._texts = {p.stem: p.read_bytes() for p in sorted(folder.glob("*.toml"))}
        if BASE not in self._texts:
            raise RecipeError(f"{folder}: no {BASE}.toml")
        self._recipes: dict[str, Recipe] = {}
        for name in self._texts:
            self.recipe(name)
        self._aliases: dict[str, str] = {}
        for recipe in self._recipes.values():
            for alias in recipe.aliases:
                if alias in self._texts or alias in self._aliases:
                    raise RecipeError(f"alias {alias!r} of {recipe.name!r} is already a name")
                self._aliases[alias] = recipe.name

    def _base_extra(self, text: bytes) -> bytes:
        # The base recipe's files (the init script) are part of its hash.
        files = _str_map(tomllib.loads(text.decode()), "files", f"images/{BASE}.toml")
        return b"".join(
            digest(dest.encode(), (self.folder / src).read_bytes()).encode()
            for dest, src in sorted(files.items())
        )

    def recipe(self, name: str, _seen: tuple[str, ...] = ()) -> Recipe:
        """The recipe called name (not an alias), parsed and hashed with its parents."""
        if name in self._recipes:
            return self._recipes[name]
        if name not in self._texts:
            raise RecipeError(f"no recipe images/{name}.toml")
        if name in _seen:
            raise RecipeError(f"recipe cycle: {' -> '.join((*_seen, name))}")
        text = self._texts[name]
        if name == BASE:
            recipe = parse(name, text, "", self._base_extra(text))
        else:
            head = parse(name, text, "")
            parent = self.recipe(head.parent or BASE, (*_seen, name))
            recipe = parse(name, text, parent.hash)
        self._recipes[name] = recipe
        return recipe

    def chain(self, name: str) -> list[Recipe]:
        """The recipes whose layers make an image (or a layer-only recipe), base first."""
        chain = [self.recipe(name if name in self._texts else self.target(name))]
        while chain[-1].parent is not None:
            chain.append(self.recipe(chain[-1].parent))
        return chain[::-1]

    def config(self, name: str) -> ImageConfig:
        """The image configuration of a name, each layer's settings over its parent's."""
        result = ImageConfig()
        for recipe in self.chain(name):
            result = recipe.config.over(result)
        return result

    def target(self, name: str) -> str:
        """The recipe an image name is built from (itself, or the recipe an alias points to)."""
        if name in self._aliases:
            return self._aliases[name]
        if name in self._texts and self._recipes[name].image:
            return name
        raise RecipeError(f"no image {name!r}; known: {', '.join(self.images())}")

    def images(self) -> list[str]:
        """Every image name: the recipes that are images, and their aliases."""
        names = [n for n, r in self._recipes.items() if r.image]
        return sorted([*names, *self._aliases])

    def aliases(self, name: str) -> tuple[str, ...]:
        """The aliases of a recipe that is an image."""
        return self.recipe(name).aliases

    def reference(self, name: str) -> str:
        """The image reference of an image name (an alias gets its target's tag)."""
        return self.recipe(self.target(name)).reference(name)
