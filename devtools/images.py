"""Local container images for the interactive tools, built here without any registry.

    python -m devtools.images list            # names, references, cached or not
    python -m devtools.images build [NAME ...] # build (all by default); a warm cache is a no-op
    python -m devtools.images import SOCKET [NAME ...]  # into a containerd, if not there yet

Each image is a Debian bookworm root filesystem (mmdebstrap) plus its tool from PyPI or npm,
packed as an OCI image archive under `${ONYXIA_CACHE_DIR:-~/.cache/onyxia-py}/images/` and
named `localhost/onyxia/<name>:<hash12>`, a name no registry can serve. The recipes are in
images/ (see images/README.md); the tag is a hash of the recipe chain and the builder version.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.images_build import Builder, Progress
from devtools.images_chroot import BuildError
from devtools.images_recipes import IMAGES_DIR, Catalog, RecipeError

__all__ = [
    "BuildError",
    "BuiltImage",
    "RecipeError",
    "build",
    "cache_dir",
    "import_into",
    "names",
    "present_in",
    "reference",
]

NAMESPACE = "k8s.io"


@dataclass(frozen=True)
class BuiltImage:
    """A built image: its reference and the OCI archive that holds it."""

    ref: str
    archive: Path


def cache_dir() -> Path:
    """The images cache: `${ONYXIA_CACHE_DIR:-~/.cache/onyxia-py}/images`."""
    env = os.environ.get("ONYXIA_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "onyxia-py") / "images"


def names(folder: Path = IMAGES_DIR) -> list[str]:
    """Every image name (recipes that are images, and their aliases), sorted."""
    return Catalog(folder).images()


def reference(name: str, folder: Path = IMAGES_DIR) -> str:
    """The reference an image gets (`localhost/onyxia/<name>:<hash12>`), without building it."""
    return Catalog(folder).reference(name)


@contextlib.contextmanager
def _locked(cache: Path, say: Callable[[str], None]) -> Iterator[None]:
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("[images] waiting for another build of this cache")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_index(cache: Path, built: dict[str, BuiltImage]) -> None:
    path = cache / "index.json"
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError):
        index = {}
    for name, image in built.items():
        index[name] = {"reference": image.ref, "archive": str(image.archive)}
    tmp = path.with_name(".index.json.tmp")
    tmp.write_text(json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    tmp.replace(path)


def build(
    names: Sequence[str] | None = None,
    *,
    folder: Path = IMAGES_DIR,
    cache: Path | None = None,
    jobs: int | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, BuiltImage]:
    """Build the named images (all when None) unless cached; map each name to its image."""
    catalog = Catalog(folder)
    wanted = list(names) if names else catalog.images()
    targets = list(dict.fromkeys(catalog.target(n) for n in wanted))
    cache = cache or cache_dir()
    progress = Progress(out)
    builder = Builder(catalog, cache, progress)
    cold = [t for t in targets if not builder.archive(t).is_file()]
    if cold:
        if os.geteuid() != 0:
            raise BuildError("building images needs root (mmdebstrap, overlay mounts, chroot)")
        with _locked(cache, out):
            builder.run(cold, jobs or int(os.environ.get("ONYXIA_IMAGES_JOBS", "2")))
        progress.say(f"built {', '.join(cold)} in {progress.total():.0f}s")
    else:
        progress.say(f"all cached ({progress.total():.2f}s)")
    built = {
        n: BuiltImage(catalog.reference(n), builder.archive(catalog.target(n))) for n in wanted
    }
    _write_index(cache, built)
    return built


def _ctr(socket: str, *args: str) -> str:
    argv = ["ctr", "--address", socket, "-n", NAMESPACE, *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"{' '.join(argv[:6])} failed: {result.stderr.strip()}")
    return result.stdout


def present_in(containerd_socket: str) -> set[str]:
    """The image references that a containerd holds complete (all content present)."""
    listed = set(_ctr(containerd_socket, "images", "ls", "-q").split())
    complete = set()
    for line in _ctr(containerd_socket, "images", "check").splitlines()[1:]:
        fields = line.split()
        # REF TYPE DIGEST STATUS SIZE UNPACKED: complete, and unpacked for the snapshotter.
        if fields and fields[0] in listed and "complete" in line and fields[-1] == "true":
            complete.add(fields[0])
    return complete


def import_into(
    containerd_socket: str,
    names: Sequence[str] | None = None,
    *,
    folder: Path = IMAGES_DIR,
    cache: Path | None = None,
    out: Callable[[str], None] = print,
) -> dict[str, BuiltImage]:
    """Build the named images if needed and import those a containerd lacks (namespace k8s.io)."""
    built = build(names, folder=folder, cache=cache, out=out)
    present = present_in(containerd_socket)
    archives: dict[Path, str] = {}
    for name, img in built.items():
        if img.ref not in present:
            archives.setdefault(img.archive, name)
    progress = Progress(out)
    for archive, name in sorted(archives.items()):
        with progress.step(name, "ctr images import"):
            _ctr(containerd_socket, "images", "import", "--no-unpack=false", str(archive))
    return built


def _list(folder: Path, cache: Path) -> None:
    catalog = Catalog(folder)
    builder = Builder(catalog, cache, Progress(print))
    for name in catalog.images():
        archive = builder.archive(catalog.target(name))
        alias = f" (alias of {catalog.target(name)})" if catalog.target(name) != name else ""
        state = f"{archive.stat().st_size >> 20} MiB" if archive.is_file() else "not built"
        print(f"{name:22} {catalog.reference(name):48} {state}{alias}")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: list, build [NAME ...], import SOCKET [NAME ...]."""
    parser = argparse.ArgumentParser(prog="python -m devtools.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="image names, references and cache state")
    build_cmd = sub.add_parser("build", help="build images (all by default)")
    build_cmd.add_argument("names", nargs="*")
    build_cmd.add_argument("--jobs", type=int, default=None, help="layers built at once (2)")
    import_cmd = sub.add_parser("import", help="import images into a containerd")
    import_cmd.add_argument("socket")
    import_cmd.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _list(IMAGES_DIR, cache_dir())
        elif args.command == "build":
            for name, image in build(args.names or None, jobs=args.jobs).items():
                print(f"{name}: {image.ref} {image.archive}")
        else:
            for name, image in import_into(args.socket, args.names or None).items():
                print(f"{name}: {image.ref}")
    except (BuildError, RecipeError) as exc:
        print(f"[images] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
