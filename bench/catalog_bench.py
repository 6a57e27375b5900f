"""Catalogue benchmark: cold load of a 300 charts x 10 versions repository, and the launch-form
endpoint answering from cache. Prints a table of medians and p95 next to the targets of issue #4.

Run: `make bench` (or `python -m bench.catalog_bench --charts 300 --versions 10`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.gen_repo import generate_repository
from bench.report import percentile, print_table
from devtools.helmrepo import HelmRepoServer
from devtools.ports import free_port
from onyxia_py.app import create_app
from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import CatalogSpec
from onyxia_py.settings import AuthSettings, CatalogSettings, DatabaseSettings, Settings
from tests.support import ServedApp, wait_for_catalogs


async def cold_load(url: str, mode: str, cache: Path) -> tuple[float, int, int]:
    """Seconds to load the catalogue with an empty cache; charts and versions offered."""
    spec = CatalogSpec.model_validate(
        {"id": "bench", "name": "Bench", "location": url, "multipleServicesMode": mode}
    )
    service = Catalogs(CatalogSettings(cache_dir=cache), [spec], base_dir=cache)
    started = time.perf_counter()
    status = await service.refresh("bench")
    elapsed = time.perf_counter() - started
    await service.stop()
    if status.last_error:
        raise RuntimeError(status.last_error)
    loaded = service.loaded("bench")
    return elapsed, len(loaded.charts), sum(len(c.versions) for c in loaded.charts)


def form_latencies(url: str, work: Path, requests: int) -> list[float]:
    """Milliseconds per launch-form request over HTTP, after every form was computed once."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    definition = {"id": "bench", "name": "Bench", "location": url}
    settings = Settings(
        server={"port": port},
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{work / 'bench.db'}"),
        catalogs=CatalogSettings(paths=[], definitions=[definition], cache_dir=work / "cache"),
        auth=AuthSettings(local_username="bench"),
    )
    with ServedApp(create_app(settings), port) as app, httpx.Client(base_url=app.url) as http:
        wait_for_catalogs(http.get)
        charts = [c["name"] for c in http.get("/api/catalogs/bench").json()["charts"]]
        for chart in charts:  # warm: chart files on disk and in memory
            http.get(f"/api/catalogs/bench/charts/{chart}/form").raise_for_status()
        rng = random.Random(7)  # noqa: S311 (picks charts, not secrets)
        samples = []
        for _ in range(requests):
            chart = rng.choice(charts)
            started = time.perf_counter()
            http.get(f"/api/catalogs/bench/charts/{chart}/form").raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
        return samples


def main() -> None:
    """Generate, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--charts", type=int, default=300)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="cold loads per mode")
    parser.add_argument("--requests", type=int, default=500, help="form requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="onyxia-bench-") as tmp:
        root = Path(tmp)
        repo_dir = root / "repo"
        repo_dir.mkdir()
        with HelmRepoServer(repo_dir) as server:
            started = time.perf_counter()
            generate_repository(repo_dir, args.charts, args.versions, base_url=server.url)
            took = time.perf_counter() - started
            print(f"generated {args.charts}x{args.versions} charts in {took:.1f}s")
            rows = []
            for mode in ("latest", "all"):
                times, shape = [], (0, 0)
                for run in range(args.runs):
                    elapsed, charts, versions = asyncio.run(
                        cold_load(server.url, mode, root / f"cold-{mode}-{run}")
                    )
                    times.append(elapsed)
                    shape = (charts, versions)
                rows.append(
                    (
                        f"cold load, mode {mode} ({shape[0]} charts, {shape[1]} packages)",
                        f"{statistics.median(times):.2f} s",
                        f"{percentile(times, 0.95):.2f} s",
                        "< 15 s",
                        len(times),
                    )
                )
            latencies = form_latencies(server.url, root / "app", args.requests)
            rows.append(
                (
                    "GET launch form (from cache, over HTTP)",
                    f"{statistics.median(latencies):.1f} ms",
                    f"{percentile(latencies, 0.95):.1f} ms",
                    "p95 < 20 ms",
                    len(latencies),
                )
            )
    print_table(rows)


if __name__ == "__main__":
    main()
