"""Issue #15's kill faults: the API server SIGKILLed mid-install and while Helm waits, and the
platform SIGKILLed after the 202 and mid-install. Each launch ends (running, or failed with a
reason) within the launch bound, and nothing is a ghost: Helm's release Secrets, the service
record and the listing agree, and a DELETE leaves nothing.

The module starts its own control plane (killing its API server cannot disturb other modules)
and serves the platform as a real process (`python -m onyxia_py serve`), so a SIGKILL leaves
exactly what a dead replica leaves: the Helm release pending, the Lease held."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devtools.localcluster import ClusterError, LocalCluster, NodeSpec
from devtools.localoidc import ALICE_PASSWORD, LocalOidcProvider, OidcClient, default_users
from devtools.oidcflows import authorization_code_tokens, login
from devtools.ports import free_port
from onyxia_py.kube import KubeClient
from onyxia_py.services.reconciler import INSTALL_ENDED, INTERRUPTED, NEVER_INSTALLED
from onyxia_py.settings import KubernetesSettings

from .services.helpers import (
    CHARTS,
    Follower,
    eventually_clean,
    helm_statuses,
    leftovers,
    record,
)

HELM_TIMEOUT, CLEANUP, INTERVAL = 15, 2.0, 1.0
BOUND = HELM_TIMEOUT + CLEANUP  # every launch ends within this
LEASE = 4  # a killed leader's successor takes over within about this plus two retries
MARGIN = 10.0  # a reconciliation pass or two, the watches catching up, a slow shared machine
API_DOWN = 4.0  # how long the killed API server stays down
UNSETTLED = ("pending-install", "pending-upgrade", "pending-rollback", "uninstalling")
REPO = Path(__file__).parents[2]
ROOM = {"requests.cpu": "8", "requests.memory": "32Gi", "count/pods": "10"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A control plane of this module alone, with one simulated node."""
    state = Path(tempfile.mkdtemp(prefix="onyxia-kill-cluster-"))
    running = LocalCluster(state, NodeSpec(count=1))
    try:
        running.start()
    except ClusterError as first:
        # As the session cluster does: a port taken between choosing and binding it.
        print(f"kill-test cluster failed to start, retrying once: {first}", file=sys.stderr)
        running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def kube(cluster: LocalCluster) -> Iterator[KubeClient]:
    client = KubeClient(KubernetesSettings(kubeconfig=cluster.kubeconfig))
    yield client
    client.close()


@dataclass
class Platform:
    """onyxia-py served by a real process; `kill` SIGKILLs it, `start` serves a fresh one on
    the same port, database and cluster."""

    config: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
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
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the platform did not start:\n{self.tail()}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2).json()
                if ready["checks"]["catalogs"] == "ok":
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        self.started.append(time.monotonic())

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def provider_and_port() -> Iterator[tuple[LocalOidcProvider, OidcClient, int]]:
    port = free_port()
    client = OidcClient(
        client_id="onyxia",
        redirect_uris=[f"http://127.0.0.1:{port}/auth/callback"],
        post_logout_redirect_uris=[f"http://127.0.0.1:{port}/"],
    )
    with LocalOidcProvider([client], default_users()) as provider:
        yield provider, client, port


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    cluster: LocalCluster,
    kube: KubeClient,
    provider_and_port: tuple[LocalOidcProvider, OidcClient, int],
) -> Iterator[Platform]:
    provider, client, port = provider_and_port
    tmp = tmp_path_factory.mktemp("kill-faults")
    tag = secrets.token_hex(3)
    config = {
        "server": {
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "session_secret": secrets.token_urlsafe(32),
        },
        "database": {"url": f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"},
        "kubernetes": {"kubeconfig": str(cluster.kubeconfig)},
        "auth": {
            "mode": "oidc",
            "issuer_url": provider.issuer,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "audience": "onyxia",
            "scopes": ["openid", "profile", "email", "groups", "roles"],
            "jwks_min_refresh_seconds": 0,
        },
        "projects": {
            "user_namespace_prefix": f"k{tag}-",
            "group_namespace_prefix": f"kg{tag}-",
            "user_quota": ROOM,
        },
        "catalogs": {
            "paths": [],
            "definitions": [{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            "cache_dir": str(tmp / "cache"),
        },
        "helm": {"timeout_seconds": HELM_TIMEOUT},
        "services": {
            "launch_cleanup_seconds": CLEANUP,
            "reconcile_interval_seconds": INTERVAL,
            "reconcile_sweep_seconds": INTERVAL,
        },
        "leader_election": {
            "lease_duration_seconds": LEASE,
            "renew_deadline_seconds": 3.0,
            "retry_period_seconds": 0.5,
        },
    }
    path = tmp / "onyxia.yaml"
    path.write_text(yaml.safe_dump(config))
    served = Platform(path, port, tmp / "onyxia.log")
    served.start()
    try:
        yield served
    finally:
        served.stop()
        print(f"\nplatform log tail:\n{served.tail(15)}")


@pytest.fixture(scope="module")
def alice(
    platform: Platform, provider_and_port: tuple[LocalOidcProvider, OidcClient, int]
) -> dict[str, str]:
    provider, client, _ = provider_and_port
    # A browser login brings alice's project up (namespace, RoleBinding).
    with httpx.Client(base_url=platform.url, timeout=30) as http:
        start = http.get("/auth/login", params={"next": "/api/me"})
        back = login(http, start.headers["location"], "alice", ALICE_PASSWORD)
        assert http.get(back.headers["location"]).status_code == 303
    with httpx.Client(timeout=30) as http:
        tokens = authorization_code_tokens(http, provider, client, "alice", ALICE_PASSWORD)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture(scope="module")
def project(platform: Platform, alice: dict[str, str]) -> str:
    me = httpx.get(f"{platform.url}/api/me", headers=alice, timeout=30).json()
    return str(me["projects"][0]["id"])


# -- what the cluster, the record and the listing say ------------------------------------------


def listed(platform: Platform, alice: dict[str, str], project: str, release: str) -> dict[str, Any]:
    answer = httpx.get(f"{platform.url}/api/projects/{project}/services", headers=alice, timeout=30)
    assert answer.status_code == 200, answer.text
    return next((s for s in answer.json() if s["id"] == release), {})


def wait_until(what: str, check: Any, timeout: float, pause: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            seen = check()
        except httpx.HTTPError:
            seen = None
        if seen:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout:.0f}s: {what}")
        time.sleep(pause)


def launch(platform: Platform, alice: dict[str, str], project: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "rstudio", "values": {"persistence": {"enabled": False}}},
        headers=alice,
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def settled(
    kube: KubeClient, platform: Platform, alice: dict[str, str], project: str, release: str
) -> dict[str, Any]:
    """Once Helm, the record and the listing agree: the listing line ({} when it is gone)."""
    revisions = helm_statuses(kube, project, release)
    status = revisions[-1][1] if revisions else None
    kept = record(kube, project, release)
    line = listed(platform, alice, project, release)
    if status in UNSETTLED:
        return {}
    if status == "deployed" and kept and line.get("status") == "running":
        return line
    if line.get("status") == "failed" and line.get("reason") and kept:
        return line  # failed with a reason, whether Helm still has a (failed) release or not
    if status is None and not kept and not line:
        return {"gone": True}
    return {}


def delete_leaves_nothing(
    kube: KubeClient, platform: Platform, alice: dict[str, str], project: str, release: str
) -> None:
    url = f"{platform.url}/api/projects/{project}/services/{release}"
    answer = httpx.delete(url, headers=alice, timeout=60)
    assert answer.status_code in (204, 404), answer.text
    assert eventually_clean(kube, project, release) == []
    assert not listed(platform, alice, project, release)


def release_is(kube: KubeClient, project: str, release: str, moment: str) -> bool:
    """Whether the launch reached `moment`: `after-202` (at once), `mid-install` (Helm's
    pending record exists) or `helm-waits` (its StatefulSet too: Helm waits for it)."""
    if moment == "after-202":
        return True
    if "pending-install" not in {s for _, s in helm_statuses(kube, project, release)}:
        return False
    made = leftovers(kube, project, release)
    return moment == "mid-install" or any(i.startswith("statefulsets/") for i in made)


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["mid-install", "helm-waits"])
def test_the_api_server_killed_during_an_install(
    cluster: LocalCluster,
    kube: KubeClient,
    platform: Platform,
    alice: dict[str, str],
    project: str,
    moment: str,
) -> None:
    accepted = launch(platform, alice, project)
    t0 = time.monotonic()
    release = accepted["release"]
    follower = Follower(platform.url + accepted["events_url"], alice)
    follower.start()
    wait_until(f"{release} {moment}", lambda: release_is(kube, project, release, moment), 15, 0.05)
    killed = time.monotonic()
    cluster.kill_apiserver()
    time.sleep(API_DOWN)
    cluster.start_apiserver()
    back = time.monotonic()
    follower.join(BOUND + MARGIN - (time.monotonic() - t0))
    assert follower.ended is not None, f"the launch did not end within the bound: {follower.events}"
    assert follower.error is None, follower.error
    last = follower.events[-1]
    took = follower.ended - t0
    print(
        f"\n[{moment}] killed at {killed - t0:.1f}s, API back at {back - t0:.1f}s, "
        f"launch ended at {took:.1f}s: {last['phase']}: {last['message']}"
    )
    assert took <= BOUND + MARGIN
    assert last["phase"] in ("running", "failed"), last
    if last["phase"] == "failed":
        assert last["message"], last
    # Within the bound and a pass or two of the reconciler, Helm, the record and the listing
    # agree; no release is left pending.
    line = wait_until(
        f"{release} settled", lambda: settled(kube, platform, alice, project, release), MARGIN * 2
    )
    agreed = time.monotonic() - t0
    kept = record(kube, project, release)
    failure = kept.failure if kept else None
    print(
        f"[{moment}] agreed at {agreed:.1f}s: listed {line.get('status')}; "
        f"Helm: {helm_statuses(kube, project, release)}; record's failure: {failure!r}"
    )
    assert agreed <= BOUND + 2 * MARGIN
    delete_leaves_nothing(kube, platform, alice, project, release)
    if line.get("status") == "failed":
        # The listing gives the record's reason (the reconciler's, once it finished the cleanup
        # the launch could not), the same on every replica, not the ended launch's message.
        assert line["reason"] == failure, line


@pytest.mark.parametrize("moment", ["after-202", "mid-install"])
def test_the_platform_killed_during_a_launch(
    kube: KubeClient, platform: Platform, alice: dict[str, str], project: str, moment: str
) -> None:
    accepted = launch(platform, alice, project)
    t0 = time.monotonic()
    release = accepted["release"]
    wait_until(f"{release} {moment}", lambda: release_is(kube, project, release, moment), 15, 0.02)
    platform.kill()
    killed = time.monotonic()
    revisions = helm_statuses(kube, project, release)
    platform.start()
    restarted = time.monotonic()
    # The dead replica's install ends nowhere: the fresh one's reconciler (leader once the
    # Lease expires) ends it once past the bound: failed with the reason, or, when Helm had
    # finished before the kill landed (a fast install), no longer "installing" on the record.
    installed = revisions and all(status == "deployed" for _, status in revisions)
    wanted = ("running",) if installed else ("failed",)
    line = wait_until(
        f"{release} listed {' or '.join(wanted)}",
        lambda: (lambda s: s if s.get("status") in wanted else None)(
            listed(platform, alice, project, release)
        ),
        BOUND + LEASE + MARGIN * 2,
        0.25,
    )
    ended = time.monotonic() - t0
    print(
        f"\n[{moment}] killed at {killed - t0:.1f}s (Helm then: {revisions}), fresh platform "
        f"at {restarted - t0:.1f}s, listed {line['status']} at {ended:.1f}s: {line['reason']}"
    )
    assert ended <= BOUND + LEASE + MARGIN
    if installed:
        # Its record said "installing" (the reconciler ended that, audited), or the dead
        # replica had saved a later step already: either way the listing goes by the pods.
        kept = record(kube, project, release)
        assert kept is not None
        assert kept.failure == ""
        if kept.events and kept.events[-1].message.startswith(INSTALL_ENDED):
            audit = httpx.get(f"{platform.url}/api/admin/audit", headers=alice, timeout=30)
            actions = {e["action"] for e in audit.json() if e["target"] == f"{project}/{release}"}
            assert "service.reconcile.install-ended" in actions
        delete_leaves_nothing(kube, platform, alice, project, release)
        return
    if any(status == "pending-install" for _, status in revisions):
        assert INTERRUPTED in line["reason"]
    else:
        assert line["reason"] in (NEVER_INSTALLED,) or INTERRUPTED in line["reason"]
    # Nothing of the release is left but its record; Helm, the record and the listing agree.
    assert not [s for _, s in helm_statuses(kube, project, release) if s in UNSETTLED]
    assert settled(kube, platform, alice, project, release) == line
    kept = record(kube, project, release)
    assert kept is not None
    assert kept.failure == line["reason"]
    audit = httpx.get(f"{platform.url}/api/admin/audit", headers=alice, timeout=30).json()
    reconciled = {e["action"] for e in audit if e["target"] == f"{project}/{release}"}
    assert reconciled & {"service.reconcile.rolled-back", "service.reconcile.marked-failed"}
    delete_leaves_nothing(kube, platform, alice, project, release)
