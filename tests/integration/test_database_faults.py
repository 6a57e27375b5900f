"""Database faults, on a PostgreSQL server of this module's own (stopped, restarted, frozen with
SIGSTOP, thawed) under the real app, a real OpenID Provider and the local control plane: every
request that needs the database answers a 503 problem with Retry-After within
`database.operation_timeout_seconds`, never a 500 or a hang; listing services (read from the
cluster) keeps working; and once the server is back the same requests succeed, without
restarting the app."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from devtools.localoidc import ALICE_PASSWORD
from devtools.localpg import LocalPostgres
from onyxia_py.db import Database, Users, upgrade
from onyxia_py.errors import NotFound, Unavailable
from onyxia_py.kube import KubeClient
from onyxia_py.settings import (
    CatalogSettings,
    DatabaseSettings,
    KubernetesSettings,
    ProjectSettings,
)

from ..support import wait_for_catalogs
from .oidc_stack import Stack, bearer, browser_login, csrf, stack

CHARTS = Path(__file__).parents[2] / "charts"
DATABASE = DatabaseSettings()  # the defaults are what is measured
BOUND = DATABASE.operation_timeout_seconds
# What a loaded 2-core machine may add to the bound (thread hand-offs, the HTTP round trip).
SLACK = 3.0
SESSION_COOKIE = "onyxia-session"  # its name on http://
LAUNCH = {"catalog": "ide", "chart": "jupyter-python", "values": {}}


@dataclass
class Callers:
    """alice's three credentials, made while the database was up."""

    session: httpx.Client  # a browser's, with its session cookie (needs the database)
    session_cookie: str
    api_token: str  # a personal API token (needs the database)
    provider_token: str  # the provider's access token, its user already recorded


class AccessLog(logging.Handler):
    """Every line of the app's access log: one per answered request."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def pg() -> Iterator[LocalPostgres]:
    """A server for this module alone: the session's shared one is never stopped."""
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="module")
def access_log() -> Iterator[AccessLog]:
    handler = AccessLog()
    logger = logging.getLogger("onyxia_py.access")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@contextlib.contextmanager
def platform_on(
    pg: LocalPostgres,
    tmp: Path,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    prefix: str,
    user_quota: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[Stack]:
    """The app on `pg` and the local control plane, its projects named `<prefix>-<user>`, the
    `ide` catalogue of charts/ (`settings` added to these); alice's and bob's projects are
    deleted after."""
    quota = {"user_quota": user_quota} if user_quota else {}
    overrides = {
        "database": DatabaseSettings(url=pg.url),
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"{prefix}-", group_namespace_prefix=f"{prefix}g-", **quota
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": 60},
        **settings,
    }
    # No session cache: every session lookup goes to the database, whose outage is tested
    # (a session looked up a moment before would otherwise keep answering reads, by design).
    with stack(tmp, settings=overrides, session_cache_seconds=0.0) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    for user in ("alice", "bob"):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{prefix}-{user}", body={})


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    pg: LocalPostgres,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    tag: str,
    access_log: AccessLog,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("db-faults")
    with platform_on(pg, tmp, kube_settings, kube, f"dbf{tag}") as running:
        yield running


@pytest.fixture(scope="module")
def project(tag: str) -> str:
    return f"dbf{tag}-alice"


@pytest.fixture(scope="module")
def callers(platform: Stack, project: str) -> Iterator[Callers]:
    http, _ = browser_login(platform, "alice", ALICE_PASSWORD)
    made = http.post(
        "/api/tokens", json={"name": "faults", "scopes": ["read", "launch"]}, headers=csrf(http)
    )
    assert made.status_code == 201, made.text
    provider_token = platform.tokens("alice", ALICE_PASSWORD)["access_token"]
    # The first use records the provider's user (and bootstraps the project): later uses of
    # the same token need no database for a while.
    with platform.http() as script:
        listed = script.get(f"/api/projects/{project}/services", headers=bearer(provider_token))
    assert listed.status_code == 200, listed.text
    yield Callers(http, http.cookies[SESSION_COOKIE], made.json()["token"], provider_token)
    http.close()


Call = Callable[[httpx.Client], httpx.Response]


def needing_the_database(callers: Callers, project: str) -> dict[str, Call]:
    """Requests that cannot be answered without the database."""
    token, provider = bearer(callers.api_token), bearer(callers.provider_token)
    services = f"/api/projects/{project}/services"
    session = {"Cookie": f"{SESSION_COOKIE}={callers.session_cookie}"}
    return {
        "GET /api/me (API token)": lambda h: h.get("/api/me", headers=token),
        "GET services (API token)": lambda h: h.get(services, headers=token),
        "POST launch (API token)": lambda h: h.post(services, json=LAUNCH, headers=token),
        "GET /api/me (session)": lambda h: h.get("/api/me", headers=session),
        # Refused at its audit row, which needs the database and comes before any change.
        "POST launch (provider token)": lambda h: h.post(services, json=LAUNCH, headers=provider),
    }


def not_needing_it(callers: Callers, project: str) -> dict[str, Call]:
    """Requests answered from the cluster and memory alone."""
    provider = bearer(callers.provider_token)
    return {
        "GET services (provider token)": lambda h: h.get(
            f"/api/projects/{project}/services", headers=provider
        ),
        "GET /healthz": lambda h: h.get("/healthz"),
    }


def timed(platform: Stack, calls: dict[str, Call]) -> dict[str, tuple[httpx.Response, float]]:
    """Each call at the same time, on its own connection: its answer and how long it took."""

    def one(call: Call) -> tuple[httpx.Response, float]:
        with httpx.Client(base_url=platform.url, timeout=BOUND + 30) as http:
            start = time.monotonic()
            answer = call(http)
            return answer, time.monotonic() - start

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(one, call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def report(what: str, answers: dict[str, tuple[httpx.Response, float]]) -> None:
    print(f"\n{what}:")
    for name, (answer, seconds) in answers.items():
        print(f"  {name:32s} {answer.status_code}  {seconds:6.2f} s")


def assert_unavailable(answers: dict[str, tuple[httpx.Response, float]]) -> None:
    for name, (answer, seconds) in answers.items():
        assert answer.status_code == 503, f"{name}: {answer.status_code} {answer.text}"
        assert answer.headers["content-type"] == "application/problem+json", name
        assert answer.headers["retry-after"] == str(DATABASE.retry_after_seconds), name
        problem = answer.json()
        assert problem["type"] == "urn:onyxia-py:problem:unavailable", name
        assert problem["reason"] == "database-unavailable", name
        assert "database" in problem["detail"], name
        assert seconds <= BOUND + SLACK, f"{name} took {seconds:.1f} s"


def assert_served(answers: dict[str, tuple[httpx.Response, float]]) -> None:
    for name, (answer, seconds) in answers.items():
        assert answer.status_code == 200, f"{name}: {answer.status_code} {answer.text}"
        assert seconds <= SLACK, f"{name} took {seconds:.1f} s"


def wait_until_served(platform: Stack, callers: Callers, what: str) -> float:
    """Seconds until an API-token request succeeds again (the app is never restarted)."""
    start = time.monotonic()
    with platform.http() as http:
        while time.monotonic() - start < 60:
            answer = http.get("/api/me", headers=bearer(callers.api_token))
            if answer.status_code == 200:
                seconds = time.monotonic() - start
                print(f"\n{what}: requests served again after {seconds:.2f} s")
                return seconds
            assert answer.status_code == 503, answer.text
            time.sleep(0.2)
    raise AssertionError(f"{what}: still unavailable after 60 s")


def assert_recovered(platform: Stack, callers: Callers, project: str) -> None:
    token = bearer(callers.api_token)
    with platform.http() as http:
        assert http.get("/api/me", headers=token).status_code == 200
        listed = http.get(f"/api/projects/{project}/services", headers=token)
        assert listed.status_code == 200, listed.text
        # The launches refused during the outage left nothing behind (their audit row comes
        # before anything is made in the cluster).
        assert listed.json() == [], listed.text
        assert callers.session.get("/api/me").status_code == 200
        services = f"/api/projects/{project}/services"
        launched = http.post(services, json=LAUNCH, headers=token, timeout=60)
        assert launched.status_code == 202, launched.text
        release = launched.json()["release"]
        assert http.delete(f"{services}/{release}", headers=token, timeout=60).status_code == 204
        assert http.get("/readyz").status_code == 200


def test_a_stopped_database_answers_503_at_once_and_listing_still_works(
    platform: Stack, pg: LocalPostgres, callers: Callers, project: str
) -> None:
    pg.halt()
    try:
        down = timed(platform, needing_the_database(callers, project))
        report("PostgreSQL stopped", down)
        assert_unavailable(down)
        served = timed(platform, not_needing_it(callers, project))
        report("PostgreSQL stopped, without the database", served)
        assert_served(served)
        with platform.http() as http:
            assert http.get("/readyz").json()["checks"]["database"] != "ok"
    finally:
        pg.resume()


def test_after_a_restart_requests_succeed_again_without_restarting_the_app(
    platform: Stack, callers: Callers, project: str
) -> None:
    wait_until_served(platform, callers, "after the restart")
    assert_recovered(platform, callers, project)


def test_a_frozen_database_answers_503_within_the_bound(
    platform: Stack, pg: LocalPostgres, callers: Callers, project: str
) -> None:
    needing, not_needing = needing_the_database(callers, project), not_needing_it(callers, project)
    # A few connections in the pool first, so requests meet pooled ones as well as new ones.
    me = needing["GET /api/me (API token)"]
    warm = timed(platform, {f"warm {i}": me for i in range(4)})
    assert all(answer.status_code == 200 for answer, _ in warm.values())
    pg.freeze()
    try:
        frozen = timed(platform, {**needing, **not_needing})
        report(f"PostgreSQL frozen (SIGSTOP; bound {BOUND:g} s)", frozen)
        assert_unavailable({name: frozen[name] for name in needing})
        assert_served({name: frozen[name] for name in not_needing})
        again = timed(platform, needing)
        report("PostgreSQL still frozen, again", again)
        assert_unavailable(again)
    finally:
        pg.thaw()


def test_after_a_thaw_requests_succeed_again_without_restarting_the_app(
    platform: Stack, callers: Callers, project: str
) -> None:
    assert wait_until_served(platform, callers, "after SIGCONT") < SLACK
    assert_recovered(platform, callers, project)


def test_no_request_answered_500(platform: Stack, access_log: AccessLog) -> None:
    assert access_log.lines, "the access log was not captured"
    errors = [line for line in access_log.lines if line.split()[2].startswith("5")]
    print(f"\n{len(access_log.lines)} requests; 5xx answers: {len(errors)}")
    assert not [line for line in errors if line.split()[2] != "503"]
    with platform.http() as http:
        metrics = http.get("/metrics").text
    assert 'status="500"' not in metrics


async def test_a_locked_sqlite_database_is_unavailable_after_the_busy_timeout(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}"
    await upgrade(url)
    db = Database(DatabaseSettings(url=url, statement_timeout_seconds=0.5))
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        with pytest.raises(Unavailable, match="SQLITE_BUSY") as refused:
            await Users(db).seen(issuer="https://sso", subject="s", username="eve", email=None)
        assert 0.4 < time.monotonic() - start < 3
        assert refused.value.retry_after == 5
        holder.execute("ROLLBACK")
        # Constraint violations are the caller's to handle, never "unavailable".
        await Users(db).seen(issuer="https://sso", subject="s", username="eve", email=None)
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            async with db.session() as session:
                await session.execute(
                    sqlalchemy.text(
                        "INSERT INTO users (issuer, subject, username, first_seen, last_seen, "
                        "groups, roles) VALUES ('https://sso', 's', 'x', 0, 0, '[]', '[]')"
                    )
                )
    finally:
        holder.close()
        await db.close()
