"""The dependency fixture charts (tests/fixtures/deps) on real HTTP Helm repositories: the
catalogue's at `<server>/main`, a second one (sidecar, deps-library) at `<server>/extras`."""

from __future__ import annotations

from pathlib import Path

from devtools.helmrepo import (
    HelmRepoServer,
    build_repository,
    package_bundled,
    package_charts,
    retargeted,
)

DEPS = Path(__file__).parents[1] / "fixtures" / "deps"
# What the fixtures name where the second repository's URL goes.
PLACEHOLDER = "https://charts.example.invalid/replaced-by-the-test"
REFUSED = "127.0.0.1 is not a public address (the catalogue's allowedNetworks can allow it)"


def publish(server: HelmRepoServer, charts: list[str], *, extras: str, work: Path) -> str:
    """Serve the catalogue's repository at `<server>/main` and the second one (`sidecar`) at
    `extras` (a URL: this server's `/extras` or another's); the catalogue's location."""
    main = server.directory / "main"
    moved = {PLACEHOLDER: extras}
    sources = [retargeted(DEPS / name, work / "sources", moved) for name in charts]
    package_charts([s for s in sources if s.name != "bundled"], main)
    if "bundled" in charts:
        package_bundled(DEPS / "bundled", [DEPS / "deps-library", DEPS / "sidecar"], main)
    build_repository(main, f"{server.url}/main")
    return f"{server.url}/main"


def serve_sidecar(server: HelmRepoServer) -> str:
    """The second repository, holding `sidecar` 2.1.0 and `deps-library` 0.3.0, at
    `<server>/extras`."""
    extras = server.directory / "extras"
    package_charts([DEPS / "sidecar", DEPS / "deps-library"], extras)
    build_repository(extras, f"{server.url}/extras")
    return f"{server.url}/extras"
