"""Scale benchmark (issue #19): 10,000 services in 5,000 projects on one replica.

Fill: through the platform's own launcher (no bulk path). `--services` real services (Helm
releases with running pods on a simulated node, the cheap chart and values of the services
benchmark) are spread evenly over `--projects` personal projects, one project after another
(the app's local user first), at most `--fill-concurrency` projects launching at once, each
launch followed until it ends. It runs in a child process (a fresh platform every
`--fill-chunk` projects; the process ends before anything is measured), on a fresh local
control plane (or ONYXIA_BENCH_KUBECONFIG), and stops at each of `--checkpoints` services.

At each checkpoint a fresh server process (`python -m onyxia_py serve`, auth mode none, whose
local user is an admin, SQLite, the fill's kubeconfig and catalogue, a new chart cache) is
started, so its cold start is measured each time and its /proc figures are its own:
- the first user listing and the first admin listing after the start (and whether that admin
  listing was complete, or said it was not);
- listing latency at each of `--concurrency-levels` (`--samples` requests each, one connection
  per client, kept alive, a minimal HTTP/1.1 client): median, p95 and throughput; the
  clients run on the same machine, and the CPU they and the server used during each load is
  printed as it runs;
- RSS, threads, open file descriptors and established TCP connections to the API server, after
  those listings;
- idle CPU: the server's user + system time over `--idle-seconds` without requests;
- with each other count of `--workers` (`server.workers`, default 1 then 2), a fresh server's
  user listing at each concurrency, and what all its processes hold together;
- the baseline, Onyxia's method for the local user (Helm list in the namespace, then status and
  values of each release), run from this process.
Every listing carries a session cookie of the local user, as a browser's does (without one,
auth mode none's local user may read its own services but not the admin listing).

Run: `make bench-scale` (or `python -m bench.scale_bench --services 300 --projects 150
--checkpoints 0,100,300`). The full run fills for hours; the benchmark is not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from bench.report import Row, print_table, timing_row
from bench.services_bench import CHART, CHARTS, VALUES, cluster, helm_baseline, principal
from devtools.ports import free_port
from devtools.procstat import cpu_seconds, process_state
from onyxia_py.accounts.models import AuthMethod, Principal, Scope
from onyxia_py.api.deps import Platform
from onyxia_py.app import build_platform
from onyxia_py.db.migrate import upgrade
from onyxia_py.projects.core import personal_project
from onyxia_py.services.launcher import LaunchSpec
from onyxia_py.settings import Settings

ME = "bench-me"
PREFIX = "bs-"  # namespaces bs-<random tag>-<user>: runs on a reused cluster stay apart


@dataclass(frozen=True)
class Bench:
    """What every step of the run shares: the platform's settings (also written as the server's
    config file) and where the run keeps its files."""

    config: dict[str, Any]
    work: Path
    api_port: int

    @property
    def settings(self) -> Settings:
        """The settings the fill and the baseline run with, the server's own."""
        return Settings(**self.config)

    @property
    def namespace_prefix(self) -> str:
        """What every project namespace of this run starts with."""
        return str(self.config["projects"]["user_namespace_prefix"])


def bench_for(kubeconfig: Path, work: Path) -> Bench:
    """Settings: a copy of the charts (editing charts/ during a long run must not change what is
    measured), generous quotas, a namespace prefix of this run."""
    charts = work / "chart-sources"
    shutil.copytree(CHARTS, charts)
    tag = os.urandom(2).hex()
    config: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "log_level": "error", "access_log": False},
        "database": {"url": f"sqlite+aiosqlite:///{work / 'bench.db'}"},
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "auth": {"mode": "none", "local_username": ME},
        "catalogs": {
            "paths": [],
            "definitions": [{"id": "ide", "name": "IDE", "location": str(charts)}],
            "cache_dir": str(work / "charts"),
        },
        "projects": {
            "user_namespace_prefix": f"{PREFIX}{tag}-",
            "group_namespace_prefix": f"{PREFIX}g{tag}-",
            "user_quota": {
                "requests.cpu": "1000",
                "requests.memory": "10Ti",
                "count/pods": "200",
            },
        },
        "helm": {"timeout_seconds": 300},
    }
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return Bench(config, work, urlsplit(server).port or 443)


def owners(services: int, projects: int) -> list[str]:
    """The owner of each service to launch, in launch order: `services` spread evenly over
    `projects` users, one project's services after another (the local user's first)."""
    names = [ME, *(f"user{n:05d}" for n in range(1, projects))]
    share, extra = divmod(services, projects)
    return [name for i, name in enumerate(names) for _ in range(share + (i < extra))]


def launching(platform: Platform, username: str) -> Principal:
    """Who launches `username`'s services: for ME the server's own local user (the server may
    have made ME's project already, and a project is never handed to another owner); a bench
    user for the others."""
    if username != ME:
        return principal(username)
    identity = platform.accounts.local_identity()
    return Principal(0, identity, True, frozenset({Scope.READ, Scope.LAUNCH}), AuthMethod.LOCAL)


async def close(platform: Platform) -> None:
    """Stop what build_platform started (as the app's shutdown does): no watch of the fill may
    go on while the server is measured."""
    await platform.launcher.close()
    await platform.outbox.close()
    await platform.cache.close()
    await platform.catalogs.stop()
    await platform.db.close()
    platform.kube.close()


async def fill(settings: Settings, batch: list[str], concurrency: int, chunk: int) -> float:
    """Launch one service per entry of `batch` (its owner) through the platform's launcher and
    wait for each launch to end; seconds taken. A project's launches run one after another;
    every `chunk` projects get a fresh platform, so what the fill's own platform keeps per
    project it launched into (watches) stays bounded whatever the cache's design."""
    per_project: dict[str, int] = {}
    for username in batch:
        per_project[username] = per_project.get(username, 0) + 1
    names = list(per_project)
    progress = Progress(len(batch))
    for start in range(0, len(names), chunk):
        part = {name: per_project[name] for name in names[start : start + chunk]}
        await fill_part(settings, part, concurrency, progress)
    return time.perf_counter() - progress.started


class Progress:
    """Launches done so far in one fill, printed every tenth."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.every = max(1, total // 10)
        self.started = time.perf_counter()

    def one(self) -> None:
        """One more launch ended."""
        self.done += 1
        if self.done % self.every == 0:
            rate = self.done / (time.perf_counter() - self.started)
            print(f"  {self.done}/{self.total} launched ({rate:.2f}/s)", flush=True)


async def fill_part(
    settings: Settings, per_project: dict[str, int], concurrency: int, progress: Progress
) -> None:
    """Launch `per_project[user]` services for each user on one platform, then close it."""
    platform = build_platform(settings)
    try:
        await upgrade(platform.db.url)
        await platform.catalogs.refresh("ide")
        gate = asyncio.Semaphore(concurrency)

        async def project(username: str, count: int) -> None:
            async with gate:
                who = launching(platform, username)
                target = personal_project(username, settings.projects)
                for _ in range(count):
                    spec = LaunchSpec("ide", CHART, None, VALUES, None, False, False)
                    accepted = await platform.launcher.launch(who, target, spec)
                    while True:
                        launch = platform.tracker.get(target.namespace, accepted.release)
                        if launch is not None and launch.phase.final:
                            break
                        await asyncio.sleep(0.2)
                    if launch.events[-1].reason is not None:
                        raise RuntimeError(f"{accepted.release}: {launch.events[-1].message}")
                    progress.one()

        await asyncio.gather(*(project(name, count) for name, count in per_project.items()))
    finally:
        await close(platform)


def fill_apart(config: dict[str, Any], batch: list[str], concurrency: int, chunk: int) -> float:
    """`fill` in a child process, so nothing the fill's platforms started (a watch its cache
    failed to stop) outlives it and loads the machine while the server is measured."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as child:
        return child.submit(fill_here, config, batch, concurrency, chunk).result()


def fill_here(config: dict[str, Any], batch: list[str], concurrency: int, chunk: int) -> float:
    """`fill` in this process, from the settings' plain form (what a child process receives)."""
    return asyncio.run(fill(Settings(**config), batch, concurrency, chunk))


@contextlib.contextmanager
def served(bench: Bench, label: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    """A fresh server process (with `workers` HTTP workers) with a new chart cache; its base
    URL and pid."""
    port = free_port()
    config = bench.work / "onyxia.yaml"
    config.write_text(yaml.safe_dump(bench.config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONYXIA_")}
    env |= {
        "ONYXIA_CONFIG": str(config),
        "ONYXIA_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ONYXIA_CATALOGS__CACHE_DIR": str(bench.work / f"charts-{label}-{workers}"),
        "ONYXIA_SERVER__WORKERS": str(workers),
    }
    log = bench.work / f"server-{label}-{workers}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "onyxia_py", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def own_cpu_seconds() -> float:
    """User + system CPU time this process (the load's clients) has used."""
    times = os.times()
    return times.user + times.system


def admin_count(answer: httpx.Response, prefix: str) -> tuple[int, bool]:
    """The services of this run in an admin listing, and whether the answer said it is partial
    (a 206, a header naming it, or a `partial`/`complete` field beside the lines)."""
    body = answer.json()
    said = answer.status_code == 206 or any("partial" in name for name in answer.headers)
    if isinstance(body, dict):
        said = said or bool(body.get("partial")) or body.get("complete") is False
        body = next((value for value in body.values() if isinstance(value, list)), [])
    return sum(1 for line in body if str(line.get("project", "")).startswith(prefix)), said


def login(url: str) -> httpx.Cookies:
    """A session of the local user (auth mode none): without one it may only read its own."""
    with httpx.Client(base_url=url) as http:
        if http.get("/auth/login", follow_redirects=False).status_code != 303:
            raise RuntimeError("the local login did not open a session")
        return http.cookies


def first(url: str, path: str, jar: httpx.Cookies) -> tuple[float, httpx.Response]:
    """Seconds the first GET of `path` took, and its answer."""
    started = time.perf_counter()
    answer = httpx.get(f"{url}{path}", cookies=jar, timeout=3600)
    took = time.perf_counter() - started
    answer.raise_for_status()
    print(f"  first GET {path}: {took:.2f}s", flush=True)
    return took, answer


class Connection:
    """One kept-alive HTTP/1.1 connection sending the same GET: a load generator far cheaper
    than httpx (whose per-request CPU, on the same 2 cores, would cap the measured throughput
    below what the server can do)."""

    def __init__(self, url: str, path: str, jar: httpx.Cookies) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nCookie: {cookie}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        self.path = path

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def get(self) -> None:
        """Send the GET and read the whole answer; RuntimeError unless it is a 200."""
        self.writer.write(self.request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head[9:12])
        fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        if "content-length" in fields:
            await self.reader.readexactly(int(fields["content-length"]))
        else:  # chunked
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if status != 200:
            raise RuntimeError(f"GET {self.path} answered {status}")


async def load(
    url: str, path: str, jar: httpx.Cookies, concurrency: int, total: int
) -> tuple[list[float], float]:
    """`total` GETs of `path` from `concurrency` clients, timed once each has connected and sent
    one unmeasured request: latencies (ms) and requests/s."""
    latencies: list[float] = []
    left = total
    warmed = 0
    warm, go = asyncio.Event(), asyncio.Event()

    async def client() -> None:
        nonlocal left, warmed
        async with Connection(url, path, jar) as connection:
            await connection.get()
            warmed += 1
            if warmed == concurrency:
                warm.set()
            await go.wait()
            while left > 0:
                left -= 1
                started = time.perf_counter()
                await connection.get()
                latencies.append((time.perf_counter() - started) * 1000)

    clients = [asyncio.create_task(client()) for _ in range(concurrency)]
    waiting = asyncio.create_task(warm.wait())
    await asyncio.wait([waiting, *clients], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    started = time.perf_counter()
    go.set()
    await asyncio.gather(*clients)
    return latencies, len(latencies) / (time.perf_counter() - started)


def value_row(name: str, value: str, target: str) -> Row:
    """A table row of one figure."""
    return (name, value, "", target, 1)


async def baseline(settings: Settings, namespace: str, samples: int) -> list[float]:
    """Onyxia's listing for one user (helm list, then status and values of each release), ms."""
    platform = build_platform(settings)
    try:
        return await helm_baseline(platform, [namespace], samples)
    finally:
        await close(platform)


def measure(bench: Bench, services: int, projects: int, args: argparse.Namespace) -> list[Row]:
    """A fresh server at `services` services in `projects` projects: every figure, as rows."""
    at = f"[{services:,} svc]"
    mine = personal_project(ME, bench.settings.projects).namespace
    user_path = f"/api/projects/{mine}/services"
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        print(f"  {row[0]}: {row[1]} {row[2]} {row[3]}".rstrip(), flush=True)

    print(f"checkpoint: {services} services in {projects} projects, fresh server", flush=True)
    with served(bench, str(services)) as (url, pid):
        jar = login(url)
        took, answer = first(url, user_path, jar)
        mine_count = len(answer.json())
        add(value_row(f"{at} first user listing ({mine_count} services)", f"{took:.2f} s", "≤ 2 s"))
        took, answer = first(url, "/api/admin/services", jar)
        listed, said = admin_count(answer, bench.namespace_prefix)
        shape = "marked partial" if said else "complete" if listed == services else "NOT marked"
        add(
            value_row(
                f"{at} first admin listing ({listed:,} of {services:,}, {shape})",
                f"{took:.2f} s",
                "≤ 10 s, complete or marked",
            )
        )
        user_ms: list[float] = []
        for name, path, p95 in (("user", user_path, 20), ("admin", "/api/admin/services", 100)):
            for concurrency in args.concurrency_levels:
                server, client = cpu_seconds(pid), own_cpu_seconds()
                started = time.monotonic()
                found, rate = asyncio.run(load(url, path, jar, concurrency, args.samples))
                wall = time.monotonic() - started
                print(
                    f"  (CPU during that load: server {(cpu_seconds(pid) - server) / wall:.0%}, "
                    f"these clients {(own_cpu_seconds() - client) / wall:.0%} of a core)",
                    flush=True,
                )
                if name == "user" and concurrency == args.concurrency_levels[0]:
                    user_ms = found
                target = f"{rate:,.0f} req/s; p95 ≤ {p95} ms"
                add(
                    timing_row(
                        f"{at} {name} listing, concurrency {concurrency}", found, "ms", target
                    )
                )
        state = process_state(pid, bench.api_port)
        add(value_row(f"{at} server RSS after the listings", f"{state.rss_mb:.0f} MB", "≤ 500 MB"))
        add(value_row(f"{at} server threads", str(state.threads), "bounded, not per project"))
        add(value_row(f"{at} server open fds", str(state.fds), "bounded, not per project"))
        add(
            value_row(
                f"{at} server TCP connections to the API server",
                str(state.api_connections),
                "bounded, not per project",
            )
        )
        time.sleep(2)  # let the last answers' work settle
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100
        add(
            value_row(
                f"{at} server idle CPU ({args.idle_seconds:.0f} s)",
                f"{idle:.1f} %",
                "< 2 % of a core",
            )
        )
        after = process_state(pid, bench.api_port)
        print(
            f"  after idling: {after.rss_mb:.0f} MB, {after.threads} threads, {after.fds} fds, "
            f"{after.api_connections} API connections",
            flush=True,
        )
    for workers in args.workers[1:]:
        with served(bench, str(services), workers) as (url, pid):
            jar = login(url)
            first(url, user_path, jar)
            time.sleep(2)  # every worker's watches in (a listing may reach any worker)
            for concurrency in args.concurrency_levels:
                found, rate = asyncio.run(load(url, user_path, jar, concurrency, args.samples))
                add(
                    timing_row(
                        f"{at} user listing, {workers} workers, concurrency {concurrency}",
                        found,
                        "ms",
                        f"{rate:,.0f} req/s; p95 ≤ 20 ms",
                    )
                )
            state = process_state(pid, bench.api_port)
            add(
                value_row(
                    f"{at} {workers} workers: RSS, threads, API connections (all processes)",
                    f"{state.rss_mb:.0f} MB, {state.threads}, {state.api_connections}",
                    "≤ 500 MB (one replica's)",
                )
            )
    if mine_count:
        found = asyncio.run(baseline(bench.settings, mine, args.baseline_samples))
        ratio = sorted(found)[len(found) // 2] / sorted(user_ms)[len(user_ms) // 2]
        add(
            timing_row(
                f"{at}   baseline: helm list + status + values x{mine_count}",
                found,
                "ms",
                f"ours {ratio:,.0f}x faster (c=1)",
            )
        )
    return rows


def numbers(text: str) -> list[int]:
    """`"0,2000,10000"` as integers."""
    return [int(part) for part in text.split(",") if part.strip()]


def main() -> None:
    """Fill to each checkpoint, measure a fresh server there, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--projects", type=int, default=5000)
    parser.add_argument("--checkpoints", type=numbers, default=[0, 2000, 10000])
    parser.add_argument("--concurrency-levels", type=numbers, default=[1, 10, 50])
    parser.add_argument("--samples", type=int, default=500, help="requests per listing and level")
    parser.add_argument("--baseline-samples", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument(
        "--workers",
        type=numbers,
        default=[1, 2],
        help="server.workers of the servers measured: every figure with the first, the user "
        "listing with each other",
    )
    parser.add_argument("--fill-concurrency", type=int, default=16, help="projects at once")
    parser.add_argument(
        "--fill-chunk", type=int, default=250, help="projects per platform of the fill"
    )
    args = parser.parse_args()
    if args.checkpoints != sorted(args.checkpoints) or args.checkpoints[-1] > args.services:
        parser.error("--checkpoints must ascend and not pass --services")
    if not 0 < args.projects <= args.services:
        parser.error("--projects must be between 1 and --services")
    order = owners(args.services, args.projects)
    rows: list[Row] = []
    print(
        f"fill: {args.services} services in {args.projects} projects through the platform's "
        "launcher (no bulk path), each launch followed until it ends",
        flush=True,
    )
    with cluster(args.services + 200) as kubeconfig, tempfile.TemporaryDirectory() as tmp:
        bench = bench_for(kubeconfig, Path(tmp))
        filled = 0
        for checkpoint in args.checkpoints:
            if checkpoint > filled:
                batch = order[filled:checkpoint]
                took = fill_apart(bench.config, batch, args.fill_concurrency, args.fill_chunk)
                rate = len(batch) / took
                print(f"{checkpoint} services running after {took:.0f}s ({rate:.2f}/s)")
                rows.append(
                    value_row(
                        f"fill {filled:,} -> {checkpoint:,} through the launcher",
                        f"{rate:.2f}/s",
                        f"{took:,.0f} s",
                    )
                )
                filled = checkpoint
            projects = len(set(order[:filled]))
            try:
                rows += measure(bench, filled, projects, args)
            except (RuntimeError, httpx.HTTPError, OSError) as exc:
                print(f"  checkpoint {filled} failed: {exc!r}", flush=True)
                rows.append(value_row(f"[{filled:,} svc] FAILED: {exc!r}"[:120], "", ""))
    print_table(rows)
    print(
        "fill: the platform's launcher; rows [N svc]: a fresh server process at N services; "
        "target column of listings: throughput (all clients), then the issue's target"
    )


if __name__ == "__main__":
    main()
