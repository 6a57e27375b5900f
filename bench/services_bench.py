"""Services benchmark (issue #6): listings served from the watch-fed cache next to Onyxia's
method (Helm list, then one Helm status + values per release), launch acceptance, and the
platform's launch-to-running time next to a bare helm-python-sdk install of the same chart.

It starts its own local control plane (or uses ONYXIA_BENCH_KUBECONFIG), fills it with
`--users` x `--per-user` real services (Helm releases with running pods) through the platform's
launcher, then serves the app on a free port and measures over HTTP. Prints one table.

Run: `make bench-services` (or `python -m bench.services_bench --users 100 --per-user 20`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.report import Row, print_table, timing_row
from devtools.localcluster import LocalCluster, NodeSpec
from devtools.ports import free_port
from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.api.deps import Platform
from onyxia_py.app import build_platform, create_app
from onyxia_py.db.migrate import upgrade
from onyxia_py.projects.core import personal_project
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.settings import (
    AuthSettings,
    CatalogSettings,
    DatabaseSettings,
    KubernetesSettings,
    ProjectSettings,
    ServerSettings,
    Settings,
)
from tests.support import ServedApp, wait_for_catalogs

CHARTS = Path(__file__).parents[1] / "charts"
CHART = "jupyter-python"
VALUES: dict[str, Any] = {"persistence": {"enabled": False}}
ME = "bench-me"


@contextmanager
def cluster(pods: int) -> Iterator[Path]:
    """A kubeconfig: ONYXIA_BENCH_KUBECONFIG, else a fresh local control plane."""
    existing = os.environ.get("ONYXIA_BENCH_KUBECONFIG")
    if existing:
        yield Path(existing)
        return
    with tempfile.TemporaryDirectory(prefix="onyxia-bench-cluster-") as state:
        nodes = NodeSpec(count=1, cpu="100000", memory="1000Ti", pods=pods, gpu_nodes=0)
        local = LocalCluster(Path(state), nodes, timeout=120)
        local.start()
        try:
            yield local.kubeconfig
        finally:
            local.stop()


def settings_for(kubeconfig: Path, work: Path, port: int) -> Settings:
    # A copy of the charts: editing charts/ during a long run must not change what is measured.
    charts = work / "chart-sources"
    shutil.copytree(CHARTS, charts)
    tag = secrets.token_hex(2)
    return Settings(
        server=ServerSettings(port=port, public_url=f"http://127.0.0.1:{port}"),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{work / 'bench.db'}"),
        kubernetes=KubernetesSettings(kubeconfig=kubeconfig),
        auth=AuthSettings(local_username=ME),
        catalogs=CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(charts)}],
            cache_dir=work / "charts",
        ),
        projects=ProjectSettings(
            user_namespace_prefix=f"b{tag}-",
            group_namespace_prefix=f"bg{tag}-",
            user_quota={"requests.cpu": "1000", "requests.memory": "10Ti", "count/pods": "200"},
        ),
        helm={"timeout_seconds": 300},
    )


def principal(username: str) -> Principal:
    identity = Identity("bench", username, username, None, (), ())
    return Principal(0, identity, False, frozenset({Scope.READ, Scope.LAUNCH}), AuthMethod.LOCAL)


async def populate(settings: Settings, users: int, per_user: int, concurrency: int) -> float:
    """Launch `per_user` services for each of `users` users (the first is the app's local
    user) through the platform's own launcher; seconds taken."""
    platform = build_platform(settings)
    await upgrade(platform.db.url)
    await platform.catalogs.refresh("ide")
    gate = asyncio.Semaphore(concurrency)
    names = [ME, *(f"user{n:03d}" for n in range(1, users))]

    async def one(username: str) -> None:
        async with gate:
            who = principal(username)
            project = personal_project(username, settings.projects)
            accepted = await platform.launcher.launch(
                who, project, LaunchSpec("ide", CHART, None, VALUES, None, False, False)
            )
            while True:
                launch = platform.tracker.get(project.namespace, accepted.release)
                if launch is not None and launch.phase.final:
                    if launch.events[-1].reason is not None:
                        raise RuntimeError(f"{accepted.release}: {launch.events[-1].message}")
                    return
                await asyncio.sleep(0.2)

    started = time.perf_counter()
    done = 0
    for username in names:
        await asyncio.gather(*(one(username) for _ in range(per_user)))
        done += per_user
        print(f"  {done}/{users * per_user} services running", flush=True)
    took = time.perf_counter() - started
    await platform.launcher.close()
    await platform.catalogs.stop()
    await platform.db.close()
    platform.kube.close()
    return took


def timed(http: httpx.Client, path: str, samples: int) -> tuple[list[float], int]:
    """Milliseconds per GET of `path` (after one warm-up), and how many lines it returned."""
    started = time.perf_counter()
    first = http.get(path, timeout=300)
    first.raise_for_status()
    print(f"  first GET {path}: {time.perf_counter() - started:.2f}s (cold cache)", flush=True)
    found = []
    for _ in range(samples):
        started = time.perf_counter()
        answer = http.get(path)
        found.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    say(path, found, "ms")
    return found, len(first.json())


def say(what: str, samples: list[float], unit: str) -> None:
    """Print a measurement as soon as it is taken (a late failure keeps the early numbers)."""
    row = timing_row(what, samples, unit, "")
    print(f"  {what}: median {row[1]}, p95 {row[2]} (n={row[4]})", flush=True)


async def helm_baseline(platform: Platform, namespaces: list[str], samples: int) -> list[float]:
    """Onyxia's listing: `helm list` per namespace, then status and values of each release."""
    found = []
    for _ in range(samples):
        started = time.perf_counter()
        for namespace in namespaces:
            releases = await platform.helm.list(namespace)
            for release in releases:
                await platform.helm.status(release.name, namespace=namespace)
                await platform.helm.get_values(release.name, namespace=namespace)
        found.append((time.perf_counter() - started) * 1000)
    return found


def session(http: httpx.Client) -> dict[str, str]:
    """Log the local user in (auth mode none) and return the CSRF header."""
    http.get("/auth/login", follow_redirects=True)
    token = http.get("/auth/session").json()["csrf_token"]
    return {"X-CSRF-Token": token}


def launch(http: httpx.Client, csrf: dict[str, str], project: str) -> tuple[float, str, float]:
    """POST a launch and follow it: (ms to the 202, release, s to running)."""
    started = time.perf_counter()
    answer = http.post(
        f"/api/projects/{project}/services",
        json={"catalog": "ide", "chart": CHART, "values": VALUES},
        headers=csrf,
    )
    accepted_ms = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    body = answer.json()
    with http.stream("GET", body["events_url"], timeout=300) as events:
        for line in events.iter_lines():
            if line.startswith("data: "):
                phase = json.loads(line[6:])["phase"]
                if phase in ("running", "failed"):
                    if phase == "failed":
                        raise RuntimeError(line)
                    break
    return accepted_ms, body["release"], time.perf_counter() - started


async def bare_installs(
    settings: Settings, namespace: str, version: str, values: dict[str, Any], count: int
) -> list[float]:
    """Seconds for helm-python-sdk to install the same chart with the same values and wait for
    it, `count` times (after one unmeasured install that warms the engine up)."""
    platform = build_platform(settings)
    await platform.catalogs.refresh("ide")
    files = await platform.catalogs.chart_files("ide", CHART, version)
    found = []
    for attempt in range(count + 1):
        release = f"bare-{secrets.token_hex(3)}"
        started = time.perf_counter()
        await platform.helm.install(
            files.directory, release=release, namespace=namespace, values=values, wait=True
        )
        took = time.perf_counter() - started
        await platform.helm.uninstall(release, namespace=namespace)
        if attempt:
            found.append(took)
    await platform.catalogs.stop()
    await platform.db.close()
    platform.kube.close()
    return found


def main() -> None:
    """Fill, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--per-user", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=10, help="launches at once to fill")
    parser.add_argument("--samples", type=int, default=200, help="listing requests")
    parser.add_argument("--baseline-samples", type=int, default=5)
    parser.add_argument("--launches", type=int, default=10, help="timed launches (and bare)")
    args = parser.parse_args()
    total = args.users * args.per_user
    rows: list[Row] = []
    with cluster(total + 200) as kubeconfig, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = settings_for(kubeconfig, Path(tmp), port)
        print(f"filling: {args.users} users x {args.per_user} services", flush=True)
        took = asyncio.run(populate(settings, args.users, args.per_user, args.concurrency))
        print(f"{total} services running after {took:.0f}s", flush=True)
        mine = personal_project(ME, settings.projects).namespace
        with (
            ServedApp(create_app(settings), port) as app,
            httpx.Client(base_url=app.url, timeout=60) as http,
        ):
            wait_for_catalogs(http.get)
            csrf = session(http)
            user_ms, user_count = timed(http, f"/api/projects/{mine}/services", args.samples)
            admin_ms, admin_count = timed(http, "/api/admin/services", args.samples)
            baseline_user = asyncio.run(
                helm_baseline(build_platform(settings), [mine], args.baseline_samples)
            )
            say("baseline, one user", baseline_user, "ms")
            namespaces = sorted({s["project"] for s in http.get("/api/admin/services").json()})
            baseline_admin = asyncio.run(helm_baseline(build_platform(settings), namespaces, 1))
            say("baseline, every project", baseline_admin, "ms")
            accepted, to_running = [], []
            sample = http.get(f"/api/projects/{mine}/services").json()[0]
            values = asyncio.run(
                build_platform(settings).helm.get_values(sample["id"], namespace=mine)
            )
            for _ in range(args.launches):
                ms, release, seconds = launch(http, csrf, mine)
                accepted.append(ms)
                to_running.append(seconds)
                http.delete(f"/api/projects/{mine}/services/{release}", headers=csrf)
            say("launch accepted", accepted, "ms")
            say("launch to running", to_running, "s")
            bare = asyncio.run(
                bare_installs(settings, mine, sample["version"], values, args.launches)
            )
            say("bare install", bare, "s")

    ratio_user = statistics.median(baseline_user) / statistics.median(user_ms)
    ratio_admin = statistics.median(baseline_admin) / statistics.median(admin_ms)
    overhead = statistics.median(to_running) / statistics.median(bare) - 1
    rows += [
        timing_row(f"list, user with {user_count} services (HTTP)", user_ms, "ms", "p95 < 20 ms"),
        timing_row(
            f"  baseline: helm list + status + values x{user_count}",
            baseline_user,
            "ms",
            f"ours {ratio_user:.0f}x faster (>=10x)",
        ),
        timing_row(
            f"list, admin, all {admin_count} services (HTTP)", admin_ms, "ms", "p95 < 100 ms"
        ),
        timing_row(
            f"  baseline: the same over {len(namespaces)} namespaces",
            baseline_admin,
            "ms",
            f"ours {ratio_admin:.0f}x faster (>=10x)",
        ),
        timing_row("launch accepted (POST -> 202)", accepted, "ms", "p95 < 100 ms"),
        timing_row("launch to running, platform (POST -> SSE)", to_running, "s", ""),
        timing_row(
            "  bare helm-python-sdk install, wait", bare, "s", f"overhead {overhead:+.0%} (<=25%)"
        ),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()
