"""Launch-to-usable benchmark (issue #13): the time from the POST of a Jupyter launch to the first
HTTP 200 from its URL through the local ingress, on a real node, next to a bare
helm-python-sdk install of the same chart with the same values, waiting for the same 200. Also
the real node's idle CPU and memory (kubelet, containerd, kube-proxy, ingress, DNS).

It starts its own local cluster with one real node (or uses ONYXIA_BENCH_STATE_DIR, the state
dir of a running one), builds and imports the images once, serves the platform (auth mode none)
on a free port and alternates platform and bare launches. Prints one table.

Run: `make bench-usable` (or `python -m bench.usable_bench --launches 5`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.report import Row, print_table, timing_row
from bench.services_bench import VALUES, launch, principal, session, settings_for
from devtools.localcluster import LocalCluster, NodeSpec
from devtools.localplatform import prepare_images, settings_overrides
from devtools.ports import free_port
from onyxia_py.app import build_platform, create_app
from onyxia_py.catalog.launch import LaunchRequest, prepare_values
from onyxia_py.projects.core import personal_project
from onyxia_py.settings import CatalogSettings, RegionSettings, Settings
from tests.support import ServedApp, wait_for_catalogs

CHART = "jupyter-python"
NODE_PROCESSES = ("kubelet", "containerd", "kube-proxy", "nginx", "dnsmasq")


@contextmanager
def real_cluster() -> Iterator[LocalCluster]:
    """The benchmark's cluster: one real node, no simulated one."""
    given = os.environ.get("ONYXIA_BENCH_STATE_DIR")
    if given:
        yield LocalCluster(Path(given))
        return
    cluster = LocalCluster(Path(tempfile.mkdtemp(prefix="onyxia-bench-real-")), NodeSpec(0, real=1))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def wait_200(url: str, deadline_s: float = 300) -> None:
    """Poll the service URL through the ingress until it answers 200 (Jupyter's /api)."""
    host = url.removeprefix("http://")
    port = host.rsplit(":", 1)[1]
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Host": host}) as http:
        while time.monotonic() - started < deadline_s:
            try:
                if http.get("/api", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"{url} gave no 200 within {deadline_s:.0f}s")


async def bare_usable(settings: Settings, namespace: str) -> float:
    """Install the chart with helm-python-sdk with the values the platform computes (the same
    overrides as the platform's launches: no volume), wait for it and for the 200 through the
    ingress; seconds; then uninstall."""
    platform = build_platform(settings)
    await platform.catalogs.refresh("ide")
    try:
        project = personal_project("bench-me", settings.projects)
        request = LaunchRequest(principal("bench-me"), project, "ide", CHART, None)
        version, values = await prepare_values(platform.launch_context, request, VALUES)
        files = await platform.catalogs.chart_files("ide", CHART, version)
        release = f"bare-{secrets.token_hex(3)}"
        started = time.perf_counter()
        await platform.helm.install(
            files.directory, release=release, namespace=namespace, values=values, wait=True
        )
        host = values["ingress"]["hostname"]
        wait_200(settings.region.service_url_template.format(host=host))
        took = time.perf_counter() - started
        await platform.helm.uninstall(release, namespace=namespace)
        return took
    finally:
        await platform.catalogs.stop()
        await platform.db.close()
        platform.kube.close()


def idle_usage(seconds: float = 10.0) -> tuple[float, float]:
    """CPU (% of one core) and RSS (MiB) of the node's processes over `seconds` of idling."""

    def sample() -> tuple[float, float]:
        ticks, rss = 0.0, 0.0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if comm not in NODE_PROCESSES:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])
                rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            except (OSError, ValueError, IndexError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK"), rss

    cpu0, _ = sample()
    time.sleep(seconds)
    cpu1, rss = sample()
    return 100 * (cpu1 - cpu0) / seconds, rss


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.usable_bench")
    parser.add_argument("--launches", type=int, default=5, help="launches of each kind")
    args = parser.parse_args()
    with real_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        images = prepare_images(cluster, [CHART])
        local = settings_overrides(cluster, images)
        port = free_port()
        base = settings_for(cluster.kubeconfig, work, port)
        settings = base.model_copy(
            update={
                "region": RegionSettings(**local["region"]),
                "catalogs": CatalogSettings(**{**base.catalogs.model_dump(), **local["catalogs"]}),
            }
        )
        cpu, rss = idle_usage()
        print(f"idle node: {cpu:.1f} % of a core, {rss:.0f} MiB", flush=True)
        platform_s: list[float] = []
        bare_s: list[float] = []
        with (
            ServedApp(create_app(settings), port) as app,
            httpx.Client(base_url=app.url, timeout=60) as http,
        ):
            wait_for_catalogs(http.get)
            csrf = session(http)
            project = personal_project("bench-me", settings.projects).namespace
            http.get(f"/api/projects/{project}/services").raise_for_status()
            for n in range(args.launches):
                started = time.perf_counter()
                _, release, _ = launch(http, csrf, project)
                url = next(
                    s["urls"][0]
                    for s in http.get(f"/api/projects/{project}/services").json()
                    if s["id"] == release
                )
                wait_200(url)
                platform_s.append(time.perf_counter() - started)
                http.delete(f"/api/projects/{project}/services/{release}", headers=csrf)
                bare_s.append(asyncio.run(bare_usable(settings, project)))
                print(
                    f"  launch {n + 1}: platform {platform_s[-1]:.1f}s, bare {bare_s[-1]:.1f}s",
                    flush=True,
                )
        ratio = sorted(platform_s)[len(platform_s) // 2] / sorted(bare_s)[len(bare_s) // 2]
        rows: list[Row] = [
            timing_row(
                "Jupyter launch-to-usable through onyxia-py (POST -> 200)",
                platform_s,
                "s",
                f"<= 1.10 x bare ({ratio:.2f} x)",
            ),
            timing_row("Jupyter bare helm-python-sdk install -> 200", bare_s, "s", "baseline"),
        ]
        print_table(rows)
        print(
            f"\nidle node: {cpu:.1f} % of a core, {rss:.0f} MiB RSS ({', '.join(NODE_PROCESSES)})"
        )


if __name__ == "__main__":
    main()
