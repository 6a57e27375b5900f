"""Issue #15 as deployed: three platform processes (`python -m onyxia_py serve`) on one
PostgreSQL, competing for one Lease, behind nginx as a round-robin load balancer
(devtools/loadbalancer.py), with S3 credentials from a real Ceph RGW (assume-role mode).

What is checked: one leader at a time (the Lease holder; each process's leadership, read from
its log, never overlaps another's) and only it runs the background jobs, so an idle service
past its lifetime gets one warning Event (not three) and its S3 credentials one mint per
renewal; a catalogue added on one replica is served by the others within seconds; a launch
accepted by one replica is followed to its end through another; when the leader is SIGKILLed
another takes the Lease within a bound and the jobs go on (the next renewal, the suspension),
while requests through the load balancer keep being answered.

Auth mode none with one session secret: sessions live in the shared database, so the cookie of
one login works on every replica, as behind a real load balancer."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from devtools.helmrepo import HelmRepoServer, fixture_repository
from devtools.loadbalancer import LoadBalancer
from devtools.localpg import LocalPostgres
from devtools.localrgw import LocalRgw
from devtools.ports import free_ports
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.services import objects as service_objects
from onyxia_py.storage import objects as s3_objects

REPO = Path(__file__).parents[2]
CHARTS = REPO / "charts"
CATALOG, CHART = "lbide", "jupyter-python"
NAMES = ("a", "b", "c")
LEASE, RENEW_DEADLINE, RETRY = 5, 3.5, 0.5
TAKEOVER = LEASE + 2 * RETRY + 10  # a killed leader's successor holds the Lease within this
SYNC = 0.5  # catalogue sync interval
LIFETIME = 50.0  # seconds a service of CHART may run; the warning comes at once (60 s window)
DURATION, BEFORE = 900, 890  # S3 credentials renewed 10 s after each mint
RENEWAL = DURATION - BEFORE
LAUNCH = 120.0  # a launch ends within this on a loaded machine

T = TypeVar("T")


def eventually(what: str, check: Callable[[], T | None], seconds: float, pause: float = 0.1) -> T:
    """The first truthy `check()` within `seconds` (HTTP errors count as not yet)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            seen = check()
        except httpx.HTTPError:
            seen = None
        if seen:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        time.sleep(pause)


# -- the platform processes --------------------------------------------------------------------


@dataclass
class Replica:
    """One `python -m onyxia_py serve` process, its JSON log kept in a file."""

    name: str
    identity: str
    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    killed_at: float | None = None  # wall clock, comparable with log times

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> None:
        env = {**os.environ, "ONYXIA_CONFIG": str(self.config), "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onyxia_py", "serve"],
                env=env,
                cwd=self.config.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, seconds: float = 90.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"replica {self.name} did not get ready:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200:
                    return
            time.sleep(0.2)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.killed_at = time.time()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def records(self, logger: str, containing: str) -> list[dict[str, Any]]:
        """The JSON log records of `logger` whose message contains `containing`."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("logger") == logger and containing in entry.get("message", ""):
                    found.append(entry)
        return found

    def renewals(self, target: str = "") -> list[float]:
        """When this process renewed S3 credentials (of `target`, else of any service)."""
        prefix = f"S3 credentials of {target}{' ' if target else ''}"
        return [
            stamp(r["time"])
            for r in self.records("onyxia_py.storage.refresh", prefix)
            if " renewed until " in r["message"]
        ]

    def leadership(self) -> list[tuple[float, float]]:
        """The spans (wall clock) this process ran the leader's jobs, from its log."""
        spans, began = [], None
        for record in self.records(
            "onyxia_py.leadership.core", f"leader election: {self.identity} "
        ):
            message = record["message"]
            if " leads (Lease " in message:
                began = stamp(record["time"])
            elif began is not None and (" lost Lease " in message or " stops " in message):
                spans.append((began, stamp(record["time"])))
                began = None
        if began is not None:
            spans.append((began, self.killed_at or time.time()))
        return spans

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def stamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class Installation:
    """The replicas, the load balancer in front, the Lease they share, one logged-in session."""

    replicas: dict[str, Replica]
    lb: LoadBalancer
    lease_path: str
    tag: str
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    csrf: str = ""

    def client(self, url: str) -> httpx.Client:
        """A client of the session, on a replica's own port or the load balancer."""
        return httpx.Client(
            base_url=url, cookies=self.cookies, headers={"X-CSRF-Token": self.csrf}, timeout=60
        )

    def holder(self, kube: KubeClient) -> str:
        """Who holds the Lease ("" when nobody does yet)."""
        try:
            lease = kube.request_sync("GET", self.lease_path)
        except NotFound:
            return ""
        return str(lease["spec"].get("holderIdentity") or "")

    def by_identity(self, identity: str) -> Replica:
        return next(r for r in self.replicas.values() if r.identity == identity)

    def alive(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.proc and r.proc.poll() is None]


@pytest.fixture(scope="module")
def database() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        yield server


@pytest.fixture(scope="module")
def lease_namespace(kube: KubeClient) -> Iterator[str]:
    name = f"t-lb-{secrets.token_hex(4)}"
    kube.request_sync(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    yield name
    kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@pytest.fixture(scope="module")
def repo() -> Iterator[HelmRepoServer]:
    with fixture_repository() as server:
        yield server


def s3_config(rgw: LocalRgw, tag: str) -> dict[str, Any]:
    """Assume-role mode: the platform's own key, a role confined to this module's buckets."""
    uid = f"lb-platform-{tag}"
    access, secret = rgw.create_user(uid)
    role = rgw.create_role(
        f"onyxia-lb-{tag}",
        trust={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam:::user/{uid}"]},
                    "Action": ["sts:AssumeRole"],
                    "Condition": {"Null": {"aws:TokenIssueTime": "true"}},
                }
            ],
        },
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::u{tag}-*", f"arn:aws:s3:::g{tag}-*"],
                }
            ],
        },
    )
    return {
        "enabled": True,
        "endpoint_url": rgw.endpoint,
        "credentials_mode": "assume-role",
        "role_arn": role,
        "access_key_id": access,
        "secret_access_key": secret,
        "duration_seconds": DURATION,
        "refresh_before_seconds": BEFORE,
        "refresh_interval_seconds": 1.0,
        "user_bucket_prefix": f"u{tag}-",
        "group_bucket_prefix": f"g{tag}-",
        "request_timeout_seconds": 20.0,
    }


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory,
    kubeconfig: Path,
    kube: KubeClient,
    database: LocalPostgres,
    lease_namespace: str,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Installation]:
    tmp = tmp_path_factory.mktemp("replicas-lb")
    lb_port, *ports = free_ports(4)
    lease_name = f"onyxia-py-lb-{tag}"
    base: dict[str, Any] = {
        "server": {
            "public_url": f"http://127.0.0.1:{lb_port}",
            "session_secret": secrets.token_urlsafe(32),
            "log_format": "json",
        },
        "database": {"url": database.url},
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "auth": {"mode": "none", "local_username": "admin"},
        "projects": {"user_namespace_prefix": f"lb{tag}-", "group_namespace_prefix": f"lbg{tag}-"},
        "helm": {"timeout_seconds": int(LAUNCH)},
        "services": {"warning_minutes": 1.0, "culling_interval_seconds": 1.0},
        "s3": s3_config(rgw, tag),
    }
    replicas: dict[str, Replica] = {}
    for name, port in zip(NAMES, ports, strict=True):
        identity = f"replica-{name}-{tag}"
        config = {
            **base,
            "server": {**base["server"], "port": port},
            "catalogs": {
                "paths": [],
                "definitions": [
                    {
                        "id": CATALOG,
                        "name": "IDE",
                        "location": str(CHARTS),
                        "maxRunningHours": {CHART: LIFETIME / 3600},
                    }
                ],
                "cache_dir": str(tmp / f"cache-{name}"),
                "sync_interval_seconds": SYNC,
            },
            "leader_election": {
                "lease_namespace": lease_namespace,
                "lease_name": lease_name,
                "identity": identity,
                "lease_duration_seconds": LEASE,
                "renew_deadline_seconds": RENEW_DEADLINE,
                "retry_period_seconds": RETRY,
            },
        }
        path = tmp / f"onyxia-{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        replicas[name] = Replica(name, identity, path, port, tmp / f"onyxia-{name}.log")
    lb = LoadBalancer([r.upstream for r in replicas.values()], port=lb_port)
    running = Installation(
        replicas,
        lb,
        f"/apis/coordination.k8s.io/v1/namespaces/{lease_namespace}/leases/{lease_name}",
        tag,
    )
    try:
        # The first migrates the empty database; the others start together once it has.
        replicas["a"].spawn()
        replicas["a"].wait_ready()
        for name in NAMES[1:]:
            replicas[name].spawn()
        for name in NAMES[1:]:
            replicas[name].wait_ready()
        lb.start()
        with httpx.Client(base_url=lb.url, timeout=60) as http:
            assert http.get("/auth/login").status_code == 303
            running.csrf = http.get("/auth/session").json()["csrf_token"]
            running.cookies = http.cookies
        yield running
    finally:
        for replica in replicas.values():
            replica.stop()
        lb.stop()
        for replica in replicas.values():
            print(f"\nreplica {replica.name} log tail:\n{replica.tail(8)}")
        for namespace in (f"lb{tag}-admin",):
            with contextlib.suppress(NotFound):
                kube.request_sync("DELETE", f"/api/v1/namespaces/{namespace}", body={})


@pytest.fixture(scope="module")
def project(installation: Installation) -> str:
    with installation.client(installation.lb.url) as http:
        return str(http.get("/api/me").json()["projects"][0]["id"])


# -- what the cluster says ---------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a service's S3 Secret, as a watch handed it out."""

    seen: float  # monotonic
    release: str
    key_id: str
    refreshed_at: float  # wall clock, from the annotation


class SecretWatch(threading.Thread):
    """Every version of the S3 Secrets of a namespace: two renewals close together (two
    replicas renewing the same credentials) cannot hide between two polls."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace = kube, namespace
        self.versions: list[Version] = []
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        path = f"/api/v1/namespaces/{namespace}/secrets"
        listed = kube.request_sync("GET", path, query={"labelSelector": s3_objects.S3_LABEL})
        self._version = str(listed["metadata"]["resourceVersion"])
        for item in listed["items"]:
            self._note(item)

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                response = self.kube.open_stream(
                    f"/api/v1/namespaces/{self.namespace}/secrets",
                    query={
                        "watch": True,
                        "labelSelector": s3_objects.S3_LABEL,
                        "resourceVersion": self._version,
                        "timeoutSeconds": 5,
                    },
                    read_timeout=30,
                )
                pending = b""
                for chunk in response.stream(65536):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in filter(bytes.strip, lines):
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            raise AssertionError(f"watch error: {event['object']}")
                        self._version = event["object"]["metadata"]["resourceVersion"]
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._note(event["object"])
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _note(self, secret: dict[str, Any]) -> None:
        data, notes = secret.get("data") or {}, secret["metadata"].get("annotations") or {}
        if "AWS_ACCESS_KEY_ID" not in data:
            return
        key_id = base64.b64decode(data["AWS_ACCESS_KEY_ID"]).decode()
        release = notes.get(s3_objects.A_RELEASE, "")
        if any(v.key_id == key_id for v in self.versions):
            return  # the same credentials, another change (an annotation)
        refreshed = stamp(notes.get(s3_objects.A_REFRESHED, "1970-01-01T00:00:00+00:00"))
        self.versions.append(Version(time.monotonic(), release, key_id, refreshed))

    def of(self, release: str) -> list[Version]:
        return [v for v in self.versions if v.release == release]

    def stop(self) -> None:
        self._stopping.set()
        if self.ident is not None:
            self.join(timeout=15)


class Follower(threading.Thread):
    """Follows a launch's event stream to its end, noting when each event came."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        super().__init__(daemon=True)
        self.http, self.url = http, url
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.status: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.http.stream("GET", self.url, timeout=LAUNCH + 30) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                        self.arrived.append(time.monotonic())
        except BaseException as exc:  # reported by the test
            self.error = exc

    def result(self) -> list[dict[str, Any]]:
        self.join(LAUNCH + 40)
        assert not self.is_alive(), f"{self.url} did not end: {self.events}"
        assert self.error is None, f"{self.url}: {self.error!r}"
        assert self.status == 200, f"{self.url}: HTTP {self.status}"
        return self.events


class Load(threading.Thread):
    """Steady requests through the load balancer: when each started and how it ended."""

    def __init__(self, http: httpx.Client, path: str) -> None:
        super().__init__(daemon=True)
        self.http, self.path = http, path
        self.answers: list[tuple[float, str]] = []  # (wall clock start, status or error)
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.time()
            try:
                outcome = str(self.http.get(self.path, timeout=20).status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            self.answers.append((started, outcome))
            self._stopping.wait(0.1)

    def stop(self) -> list[tuple[float, str]]:
        self._stopping.set()
        if self.ident is not None:
            self.join(timeout=30)
        return list(self.answers)


def answering(http: httpx.Client, path: str, status: int) -> Callable[[], bool]:
    """A check: `path` answers `status`."""
    return lambda: http.get(path).status_code == status


def listed(http: httpx.Client, project: str, release: str) -> dict[str, Any]:
    answer = http.get(f"/api/projects/{project}/services")
    assert answer.status_code == 200, answer.text
    return next((s for s in answer.json() if s["id"] == release), {})


def warnings_of(kube: KubeClient, namespace: str, release: str) -> list[dict[str, Any]]:
    """The lifetime policy's warning Events about `release`."""
    selector = f"reason=LifetimeEnding,involvedObject.name={service_objects.meta_name(release)}"
    found: list[dict[str, Any]] = kube.request_sync(
        "GET", f"/api/v1/namespaces/{namespace}/events", query={"fieldSelector": selector}
    )["items"]
    return found


def launch(http: httpx.Client, project: str) -> dict[str, Any]:
    answer = http.post(
        f"/api/projects/{project}/services",
        json={"catalog": CATALOG, "chart": CHART, "values": {}},
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


# -- the tests ---------------------------------------------------------------------------------


def test_one_replica_leads_and_a_session_works_on_every_replica(
    installation: Installation, kube: KubeClient
) -> None:
    identities = {r.identity for r in installation.replicas.values()}
    holder = eventually(
        "a replica holds the Lease",
        lambda: (lambda h: h if h in identities else None)(installation.holder(kube)),
        LEASE + 10,
    )
    time.sleep(3 * RETRY)
    assert installation.holder(kube) == holder  # renewed, not taken over
    leading = {r.name for r in installation.replicas.values() if r.leadership()}
    assert leading == {installation.by_identity(holder).name}, (
        f"the Lease is held by {holder}; the logs say these lead: {sorted(leading)}"
    )
    for replica in installation.replicas.values():
        with installation.client(replica.url) as http:
            answer = http.get("/auth/session")
            assert answer.status_code == 200, (replica.name, answer.text)
            assert answer.json()["csrf_token"] == installation.csrf


def test_a_catalogue_added_on_one_replica_is_served_by_the_others(
    installation: Installation, repo: HelmRepoServer
) -> None:
    a, b, c = (installation.client(installation.replicas[n].url) for n in NAMES)
    with a, b, c:
        made = a.post(
            "/api/admin/catalogs",
            json={"id": "shared", "name": "Shared", "location": repo.url, "password": "pw-1234"},
        )
        assert made.status_code == 201, made.text
        started = time.monotonic()
        for other in (b, c):
            eventually(
                f"the catalogue served by {other.base_url}",
                answering(other, "/api/catalogs/shared", 200),
                10,
            )
        took = time.monotonic() - started
        print(f"\ncatalogue made on a, served by b and c after {took:.2f} s")
        assert took < 3 * SYNC + 3
        for other in (b, c):
            assert other.get("/api/catalogs/shared").json()["charts"]
            seen = {s["id"]: s for s in other.get("/api/admin/catalogs").json()}["shared"]
            assert seen["has_password"] is True  # unsealed with the shared session secret
            assert seen["status"]["chart_count"] == 2, seen
        assert a.delete("/api/admin/catalogs/shared").status_code == 204
        for other in (b, c):
            eventually(
                f"the catalogue gone from {other.base_url}",
                answering(other, "/api/catalogs/shared", 404),
                10,
            )


def test_a_launch_is_followed_through_another_replica(
    installation: Installation, project: str
) -> None:
    with contextlib.ExitStack() as cleanup:
        a, b, c, through_lb = (
            cleanup.enter_context(installation.client(url))
            for url in (*(installation.replicas[n].url for n in NAMES), installation.lb.url)
        )
        accepted = launch(a, project)
        release, url = accepted["release"], accepted["events_url"]
        cleanup.callback(c.delete, f"/api/projects/{project}/services/{release}")
        # Accepted by a, followed through b (from the service's record) and the load balancer.
        elsewhere, balanced = Follower(b, url), Follower(through_lb, url)
        elsewhere.start()
        balanced.start()
        on_b, on_lb = elsewhere.result(), balanced.result()
        here = Follower(a, url)
        here.start()
        on_a = here.result()
        print(f"\nfollowed on b: {[e['phase'] for e in on_b]}; on a: {[e['phase'] for e in on_a]}")
        assert on_b[0]["phase"] == "accepted", on_b
        assert on_b[-1]["phase"] == "running", on_b
        assert on_a[-1]["phase"] == "running", on_a
        assert {e["phase"] for e in on_b} <= {e["phase"] for e in on_a}, (on_b, on_a)
        assert on_lb[-1]["phase"] == "running", on_lb
        # Unbuffered: the load balancer passed the first event on before the launch ended.
        assert balanced.arrived[0] < elsewhere.arrived[-1], (balanced.arrived, elsewhere.arrived)
        assert listed(c, project, release)["status"] == "running"


def test_background_jobs_run_once_and_go_on_when_the_leader_is_killed(
    installation: Installation, kube: KubeClient, project: str
) -> None:
    watch = SecretWatch(kube, project)
    watch.start()
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(watch.stop)
        http = cleanup.enter_context(installation.client(installation.lb.url))
        load = Load(cleanup.enter_context(installation.client(installation.lb.url)), "/api/me")
        release = launch(http, project)["release"]
        cleanup.callback(http.delete, f"/api/projects/{project}/services/{release}")
        target = f"{project}/{release}"
        line = eventually(
            f"{release} running",
            lambda: (lambda s: s if s.get("status") == "running" else None)(
                listed(http, project, release)
            ),
            LAUNCH,
            0.5,
        )
        deadline = stamp(line["running_since"]) + LIFETIME

        # The leader warns once and renews the credentials, one mint each time, by itself.
        eventually(f"{release} warned", lambda: warnings_of(kube, project, release), 15, 0.5)
        eventually("two renewals", lambda: len(watch.of(release)) >= 3, 2 * RENEWAL + 20)
        leader = installation.by_identity(installation.holder(kube))
        rotations = len(watch.of(release)) - 1
        eventually(
            f"{rotations} renewals logged",
            lambda: (
                sum(len(r.renewals(target)) for r in installation.replicas.values()) >= rotations
            ),
            5,
        )
        renewed = {n: len(r.renewals(target)) for n, r in installation.replicas.items()}
        assert renewed == {n: rotations if n == leader.name else 0 for n in NAMES}, (
            f"renewals by replica, {leader.name} holding the Lease: {renewed}"
        )

        # The leader dies between two renewals, before the service's lifetime ends.
        assert listed(http, project, release)["status"] == "running"
        load.start()
        cleanup.callback(load.stop)
        time.sleep(1)
        leader.kill()
        killed = time.monotonic()
        successor = eventually(
            "another replica holds the Lease",
            lambda: (lambda h: h if h and h != leader.identity else None)(
                installation.holder(kube)
            ),
            TAKEOVER,
        )
        took = time.monotonic() - killed
        heir = installation.by_identity(successor)
        print(f"\n{leader.name} killed; {heir.name} took the Lease {took:.1f} s later")
        eventually(
            f"a renewal by {heir.name}", lambda: heir.renewals(target), RENEWAL + TAKEOVER + 10
        )
        eventually(
            f"{release} suspended at the end of its lifetime",
            lambda: listed(http, project, release).get("status") == "suspended",
            max(deadline - time.time(), 0) + 30,
            0.5,
        )
        time.sleep(2)  # room for a second warning or suspension to show
        answers = load.stop()
        audit = http.get(
            "/api/admin/audit", params={"action": "service.lifetime-suspend", "target": target}
        ).json()
        warned = warnings_of(kube, project, release)
        watch.stop()
    assert watch.error is None, watch.error

    # One leader at a time: no two processes ran the jobs at once, the successor began after
    # the kill, and each process renewed credentials only while it led.
    spans = sorted(
        (span, r.name) for r in installation.replicas.values() for span in r.leadership()
    )
    for (first, a), (second, b) in itertools.pairwise(spans):
        assert first[1] <= second[0], f"{a} and {b} led at once: {spans}"
    assert leader.killed_at is not None
    assert any(start >= leader.killed_at for start, _ in heir.leadership()), spans
    for replica in installation.replicas.values():
        outside = [
            t
            for t in replica.renewals()
            if not any(start <= t <= end + 1 for start, end in replica.leadership())
        ]
        assert not outside, f"{replica.name} renewed credentials while not leading: {outside}"
    assert took <= TAKEOVER

    # One warning Event and one suspension, though three replicas (and two leaders) saw it.
    assert len(warned) == 1, [e["metadata"]["name"] for e in warned]
    assert len(audit) == 1, audit

    # One mint per renewal: new credentials every RENEWAL seconds, never two close together,
    # and as many as the leaders logged.
    versions = watch.of(release)
    gaps = [b.refreshed_at - a.refreshed_at for a, b in itertools.pairwise(versions)]
    print(f"{len(versions) - 1} renewals, {', '.join(f'{g:.1f}' for g in gaps)} s apart")
    assert all(g >= RENEWAL - 3 for g in gaps), gaps
    logged = sum(len(r.renewals(target)) for r in installation.replicas.values())
    assert logged == len(versions) - 1, (logged, len(versions))

    # The load balancer routed around the dead replica: every request answered.
    after = [outcome for started, outcome in answers if started >= leader.killed_at]
    assert len(after) >= 10, answers
    assert set(after) == {"200"}, [a for a in answers if a[1] != "200"]
    rerouted = [e for e in installation.lb.access_log() if f'"{leader.upstream}, ' in e]
    assert rerouted, installation.lb.error_log()
