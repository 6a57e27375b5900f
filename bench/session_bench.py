"""Session lookup benchmark (issue #19): `GET /api/me` authenticated by a session cookie, with
the session cache off (a database query per request) and on, next to the same request with no
cookie (auth mode none's local user: no lookup at all), in the same run.

Each variant is a fresh `python -m onyxia_py serve` process (auth mode none, one worker, access
log off) on its own database; `--concurrency` clients send requests for `--seconds` using
`--sessions` cookies in turn (logins of the local user). The variants alternate `--rounds` times
so the shared machine's noise falls on all of them.

Run: `python -m bench.session_bench` (`--database postgres` needs Debian's PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.report import Row, print_table, timing_row
from devtools.localpg import LocalPostgres
from devtools.ports import free_port

VARIANTS = {  # name: (session cache seconds, send a session cookie)
    "session cookie, cache off": (0.0, True),
    "session cookie, cache on (5 s)": (5.0, True),
    "no cookie (no session lookup)": (0.0, False),
}
Sample = tuple[list[float], float]  # latencies (ms), requests per second


@contextlib.contextmanager
def served(database_url: str, cache_seconds: float) -> Iterator[str]:
    """The platform in its own process; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "ONYXIA_DATABASE__URL": database_url,
        "ONYXIA_SERVER__PORT": str(port),
        "ONYXIA_SERVER__LOG_LEVEL": "error",
        "ONYXIA_AUTH__SESSION_CACHE_SECONDS": str(cache_seconds),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "onyxia_py", "serve", "--host", "127.0.0.1"], env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the platform did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def cookies(url: str, sessions: int) -> list[httpx.Cookies]:
    """`sessions` logins of the local user, each its own session cookie."""
    jars = []
    for _ in range(sessions):
        with httpx.Client(base_url=url) as http:
            if http.get("/auth/login", follow_redirects=False).status_code != 303:
                raise RuntimeError("the local login did not open a session")
            jars.append(http.cookies)
    return jars


async def load(url: str, jars: list[httpx.Cookies], concurrency: int, seconds: float) -> Sample:
    """Requests from `concurrency` clients for `seconds`: latencies (ms) and requests/s."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits) as http:
            i = n
            while time.perf_counter() < stop:
                jar = jars[i % len(jars)] if jars else None
                i += concurrency
                started = time.perf_counter()
                answer = await http.get("/api/me", cookies=jar)
                latencies.append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"/api/me answered {answer.status_code}")

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - started)


def run(database_url: str, args: argparse.Namespace, label: str) -> list[Row]:
    """Every variant, `args.rounds` times alternated; one row each (and its throughput)."""
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (cache_seconds, with_cookie) in VARIANTS.items():
            with served(database_url, cache_seconds) as url:
                jars = cookies(url, args.sessions) if with_cookie else []
                asyncio.run(load(url, jars, args.concurrency, 1.0))  # warm up
                latencies, rate = asyncio.run(load(url, jars, args.concurrency, args.seconds))
                samples[name].extend(latencies)
                rates[name].append(rate)
    rows = []
    for name in VARIANTS:
        rate = sum(rates[name]) / len(rates[name])
        rows.append(timing_row(f"{label}: {name}", samples[name], "ms", f"{rate:,.0f} req/s"))
    return rows


def main() -> None:
    """Serve, log in, load, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=20, help="cookies used in turn")
    args = parser.parse_args()
    rows: list[Row] = []
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="onyxia-bench-") as tmp:
            rows += run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args, "SQLite")
    if args.database in ("postgres", "both"):
        with LocalPostgres() as server:
            rows += run(server.url, args, "PostgreSQL")
    print_table(rows)
    print("target column: mean throughput over the rounds (requests/s, all clients)")


if __name__ == "__main__":
    main()
