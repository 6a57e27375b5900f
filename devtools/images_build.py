"""Build layers and archives in the cache, sharing parent layers, up to N at a time.

Cache layout (under `${ONYXIA_CACHE_DIR:-~/.cache/onyxia-py}/images`):

    layers/<name>-<tag>/   rootfs/ (base) or upper/ (overlay diff) + layer.json, for recipes
                           other recipes derive from; a leaf's tree is dropped once packed
    blobs/sha256/<hex>     the kept layers' compressed tars
    archives/<name>-<tag>.tar   one OCI image archive per image recipe (aliases inside)
    downloads/             pip and npm caches (outside every image), npm-pack tarballs
    logs/<name>.log        the output of the last build of each recipe
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from devtools import images_host
from devtools.images_chroot import BUILD_DIR, BuildError, Chroot, mmdebstrap
from devtools.images_oci import Layer, image_config, write_archive, write_layer
from devtools.images_recipes import BASE, Catalog, Recipe
from devtools.images_steps import file_name, layer_steps

__all__ = ["Builder", "Progress"]

BASE_SKIP = ("dev", "proc", "sys", "tmp")


def _versions(folder: Path, name: str, suffix: str) -> list[Path]:
    """The cached versions of one recipe: `<name>-<tag><suffix>` (not `<name>-other-<tag>`)."""
    pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{12}}{re.escape(suffix)}")
    return [p for p in folder.glob(f"{name}-*{suffix}") if pattern.fullmatch(p.name)]


class Progress:
    """Progress lines: `[images] NAME: STEP ...` when a step starts, `(Ns)` when it ends."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        """Print one progress line."""
        with self._lock:
            self.out(f"[images] {text}")

    @contextlib.contextmanager
    def step(self, name: str, label: str) -> Iterator[None]:
        """Time one step of one image."""
        start = time.monotonic()
        self.say(f"{name}: {label} ...")
        yield
        self.say(f"{name}: {label} ({time.monotonic() - start:.0f}s)")

    def total(self) -> float:
        """Seconds since this progress started."""
        return time.monotonic() - self.started


class Builder:
    """Builds the layers and archives of a catalog's images in one cache directory."""

    def __init__(self, catalog: Catalog, cache: Path, progress: Progress) -> None:
        self.catalog = catalog
        self.cache = cache
        self.progress = progress
        self.blobs = cache / "blobs"
        self._host: images_host.HostConfig | None = None
        self._parents = {r.parent for r in map(catalog.recipe, self._names()) if r.parent}

    def _names(self) -> list[str]:
        return [p.stem for p in sorted(self.catalog.folder.glob("*.toml"))]

    def archive(self, target: str) -> Path:
        """Where the archive of an image recipe lives (built or not)."""
        recipe = self.catalog.recipe(target)
        return self.cache / "archives" / f"{target}-{recipe.tag}.tar"

    def _dir(self, recipe: Recipe) -> Path:
        return self.cache / "layers" / f"{recipe.name}-{recipe.tag}"

    def _tree(self, recipe: Recipe) -> Path:
        return self._dir(recipe) / ("rootfs" if recipe.name == BASE else "upper")

    def _kept_layer(self, recipe: Recipe) -> Layer | None:
        meta = self._dir(recipe) / "layer.json"
        if not (meta.is_file() and self._tree(recipe).is_dir()):
            return None
        layer = Layer.from_json(meta.read_text())
        blob = self.blobs / "sha256" / layer.digest.removeprefix("sha256:")
        return layer if blob.is_file() else None

    def _env(self, recipe: Recipe, build: Path) -> dict[str, str]:
        if self._host is None:
            self._host = images_host.HostConfig.discover()
        env = self._host.write(build, BUILD_DIR)
        path = self.catalog.config(recipe.name).env.get("PATH")
        if path:
            env["PATH"] = path
        return {**env, **recipe.build_env}

    def _stage_files(self, recipe: Recipe, build: Path) -> dict[str, int]:
        modes = {}
        (build / "files").mkdir(parents=True, exist_ok=True)
        for dest, src in recipe.files.items():
            source = self.catalog.folder / src
            shutil.copyfile(source, build / "files" / file_name(dest))
            modes[dest] = 0o755 if os.access(source, os.X_OK) else 0o644
        return modes

    def _npm_pack(self, recipe: Recipe, log: Path) -> dict[str, str]:
        if not recipe.unpack:
            return {}
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError(f"{recipe.name}: npm is needed on the host to fetch tarballs")
        dest = self.cache / "downloads" / "npm-pack"
        dest.mkdir(parents=True, exist_ok=True)
        names = {}
        for item in recipe.unpack:
            with log.open("ab") as err:
                out = subprocess.run(
                    [npm, "pack", item.package, "--json", "--pack-destination", str(dest)],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    cwd=dest,
                    check=False,
                )
            if out.returncode != 0:
                raise BuildError(f"{recipe.name}: npm pack {item.package} failed; log {log}")
            names[item.package] = json.loads(out.stdout)[0]["filename"]
        return names

    def _lowers(self, recipe: Recipe) -> list[Path]:
        chain = []
        parent = recipe.parent
        while parent is not None:
            chain.append(self._tree(self.catalog.recipe(parent)))
            parent = self.catalog.recipe(parent).parent
        return chain

    def _build_tree(self, recipe: Recipe, log: Path) -> None:
        folder = self._dir(recipe)
        build = folder / "build"
        build.mkdir(parents=True)
        modes = self._stage_files(recipe, build)
        tarballs = self._npm_pack(recipe, log)
        env = self._env(recipe, build)
        if recipe.name == BASE:
            sources = build / "debian.sources"
            sources.write_text(images_host.apt_sources(recipe.suite))
            with self.progress.step(recipe.name, "mmdebstrap"):
                tree = self._tree(recipe)
                mmdebstrap(
                    tree, recipe.suite, recipe.packages, sources, images_host.apt_options(), log
                )
                # The host's resolver and name were copied in; an image gets neither.
                (tree / "etc" / "resolv.conf").write_text("")
                (tree / "etc" / "hostname").write_text("localhost\n")
            recipe = dataclasses.replace(recipe, packages=())
        chroot = Chroot(
            self._tree(recipe), self._lowers(recipe), build, self.cache / "downloads", log, env
        )
        try:
            for label, script in layer_steps(recipe, tarballs, modes):
                with self.progress.step(recipe.name, label):
                    chroot.run(script, f"{recipe.name}: {label}")
        finally:
            chroot.finish()
            shutil.rmtree(build, ignore_errors=True)

    def _build_layer(self, recipe: Recipe) -> Layer:
        folder = self._dir(recipe)
        shutil.rmtree(folder, ignore_errors=True)
        for old in _versions(folder.parent, recipe.name, ""):
            shutil.rmtree(old, ignore_errors=True)
        (self.cache / "logs").mkdir(parents=True, exist_ok=True)
        log = self.cache / "logs" / f"{recipe.name}.log"
        log.write_text(f"build of {recipe.name} ({recipe.hash})\n")
        try:
            self._build_tree(recipe, log)
            with self.progress.step(recipe.name, "pack layer"):
                layer = write_layer(
                    self._tree(recipe),
                    self.blobs,
                    overlay=recipe.name != BASE,
                    skip_contents=BASE_SKIP if recipe.name == BASE else (),
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if recipe.name in self._parents:
            (folder / "layer.json").write_text(layer.to_json())
        return layer

    def _pack_image(self, recipe: Recipe, top: Layer) -> None:
        chain = self.catalog.chain(recipe.name)
        layers = [self._kept_layer(r) for r in chain[:-1]]
        if any(layer is None for layer in layers):
            raise BuildError(f"{recipe.name}: a parent layer vanished from the cache")
        all_layers = [*(x for x in layers if x is not None), top]
        refs = [self.catalog.reference(n) for n in (recipe.name, *recipe.aliases)]
        labels = {
            "org.opencontainers.image.title": recipe.name,
            "org.opencontainers.image.description": recipe.description,
            "org.opencontainers.image.version": recipe.tag,
            "io.onyxia-py.recipe-hash": recipe.hash,
        }
        history = [f"onyxia-py images: {r.name} {r.tag}" for r in chain]
        config = image_config(self.catalog.config(recipe.name), all_layers, history, labels)
        path = self.archive(recipe.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.progress.step(recipe.name, "write archive"):
            write_archive(path, refs, config, all_layers, self.blobs)
        for old in _versions(path.parent, recipe.name, ".tar"):
            if old != path:
                old.unlink()

    def _task(self, name: str) -> None:
        recipe = self.catalog.recipe(name)
        layer = self._kept_layer(recipe)
        if layer is None:
            layer = self._build_layer(recipe)
        if recipe.image and not self.archive(name).is_file():
            self._pack_image(recipe, layer)
        if recipe.name not in self._parents:
            shutil.rmtree(self._dir(recipe), ignore_errors=True)

    def _needed(self, targets: list[str]) -> list[str]:
        needed: list[str] = []
        for target in targets:
            if self.archive(target).is_file():
                continue
            for recipe in self.catalog.chain(target):
                done = recipe.name != target and self._kept_layer(recipe) is not None
                if not done and recipe.name not in needed:
                    needed.append(recipe.name)
        return needed

    def _priority(self, name: str) -> tuple[int, int]:
        recipe = self.catalog.recipe(name)
        return (name not in self._parents, -len(recipe.npm) - len(recipe.build_packages))

    def run(self, targets: list[str], jobs: int) -> None:
        """Build what the target image recipes need and is not cached, jobs at a time."""
        pending = self._needed(targets)
        running: dict[Future[None], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            while pending or running:
                ready = [
                    n
                    for n in pending
                    if (self.catalog.recipe(n).parent or "") not in pending
                    and (self.catalog.recipe(n).parent or "") not in running.values()
                ]
                for name in sorted(ready, key=self._priority)[: max(1, jobs) - len(running)]:
                    pending.remove(name)
                    running[pool.submit(self._task, name)] = name
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    error = future.exception()
                    if error is not None:
                        for other in running:
                            other.cancel()
                        raise error
        self._collect_blobs()

    def _collect_blobs(self) -> None:
        keep = set()
        for meta in (self.cache / "layers").glob("*/layer.json"):
            keep.add(Layer.from_json(meta.read_text()).digest.removeprefix("sha256:"))
        for blob in (self.blobs / "sha256").glob("*"):
            if blob.name not in keep:
                blob.unlink()
        for tmp in self.blobs.glob(".layer-*"):
            tmp.unlink()
