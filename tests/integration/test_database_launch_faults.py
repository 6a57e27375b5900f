"""Issue #15: PostgreSQL stopped, then frozen (SIGSTOP), while launches are installing, under
the real app, a real OpenID Provider, a real S3 server (Ceph RGW) and the local control plane.
On a PostgreSQL server of this module's own:

- every request during the outage answers a 503 problem with Retry-After within the database
  operation bound, or succeeds when it needs no database; none answers a 500;
- the launches accepted before the outage still end (running, or failed with a reason) within
  the launch bound, and the launches refused during it leave nothing behind (no service record,
  no Helm release, no S3 Secret, no audit row);
- once the server is back, the same requests succeed without restarting the app; each install
  that ended during the outage has its `service.install` audit row, kept meanwhile in the audit
  outbox (ConfigMaps) and delivered by the leader; Helm, the service records and the listing
  agree (no ghost)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest

from devtools.localpg import LocalPostgres
from devtools.localrgw import LocalRgw
from onyxia_py.kube import KubeClient
from onyxia_py.services import objects
from onyxia_py.services.outbox import LABEL as OUTBOX_LABEL
from onyxia_py.services.outbox import Row
from onyxia_py.settings import KubernetesSettings, LeaderElectionSettings
from onyxia_py.storage import objects as s3_objects

from . import test_database_faults as database_faults
from .oidc_stack import Stack, bearer
from .s3_stack import s3_settings, trust
from .services.helpers import Follower, eventually_clean, helm_statuses
from .test_database_faults import (
    BOUND,
    SLACK,
    AccessLog,
    Callers,
    assert_served,
    assert_unavailable,
    needing_the_database,
    not_needing_it,
    platform_on,
    report,
    timed,
    wait_until_served,
)

# This module's own PostgreSQL, access log and alice's three credentials, as the request-level
# test makes them.
pg = database_faults.pg
access_log = database_faults.access_log
callers = database_faults.callers

HELM_TIMEOUT, CLEANUP = 60, 20.0
LAUNCH_BOUND = HELM_TIMEOUT + CLEANUP  # the launcher ends every launch within this
DELIVERY = 10.0  # the leader delivers the audit outbox this often (AuditOutbox's interval)
# Room for every service of one outage at once (each jupyter-python limits 4 CPUs and 8Gi).
ROOM = {
    "requests.cpu": "8",
    "requests.memory": "64Gi",
    "limits.cpu": "64",
    "limits.memory": "256Gi",
    "requests.storage": "200Gi",
    "count/pods": "50",
}


@pytest.fixture(scope="module")
def outbox_namespace(kube: KubeClient) -> Iterator[str]:
    """The platform's own namespace (its Lease and its audit outbox), this module's alone."""
    name = f"t-outbox-{secrets.token_hex(4)}"
    kube.request_sync(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    yield name
    kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    pg: LocalPostgres,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
    outbox_namespace: str,
    access_log: AccessLog,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("db-launch-faults")
    with platform_on(
        pg,
        tmp,
        kube_settings,
        kube,
        f"dbl{tag}",
        user_quota=ROOM,
        helm={"timeout_seconds": HELM_TIMEOUT},
        services={"launch_cleanup_seconds": CLEANUP},
        leader_election=LeaderElectionSettings(lease_namespace=outbox_namespace),
        s3=s3_settings(rgw, tag),
    ) as running:
        trust(rgw, running.provider)
        yield running


@pytest.fixture(scope="module")
def project(tag: str) -> str:
    return f"dbl{tag}-alice"


# -- what the cluster, the listing and the audit log say ----------------------------------------


def labelled(kube: KubeClient, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
    """The `kind` objects (secrets, configmaps) of the namespace that match the selector."""
    path = f"/api/v1/namespaces/{namespace}/{kind}"
    found = kube.request_sync("GET", path, query={"labelSelector": selector})
    items: list[dict[str, Any]] = found["items"]
    return items


def made(kube: KubeClient, project: str) -> dict[str, set[str]]:
    """The releases of the project, as each kind of object names them."""
    records = labelled(kube, project, "secrets", objects.RELEASE_LABEL)
    helm = labelled(kube, project, "secrets", "owner=helm")
    s3 = labelled(kube, project, "secrets", f"{s3_objects.S3_LABEL}=true")
    return {
        "records": {s["metadata"]["labels"][objects.RELEASE_LABEL] for s in records},
        "helm": {s["metadata"]["labels"]["name"] for s in helm},
        "s3": {s["metadata"]["name"].removeprefix(s3_objects.SECRET_PREFIX) for s in s3},
    }


def listing(platform: Stack, callers: Callers, project: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(
        f"{platform.url}/api/projects/{project}/services",
        headers=bearer(callers.provider_token),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return {line["id"]: line for line in answer.json()}


def audit_rows(callers: Callers, action: str, project: str) -> list[dict[str, Any]]:
    answer = callers.session.get(
        "/api/admin/audit",
        params={"action": action, "target": f"{project}/", "limit": 1000},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def kept_rows(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """The audit outbox: rows waiting in the cluster for the database."""
    return labelled(kube, namespace, "configmaps", f"{OUTBOX_LABEL}=true")


def wait_until(
    what: str, check: Callable[[], Any], timeout: float, *, required: bool = True
) -> Any:
    """What `check` returns once true, polled until `timeout`; past it, an AssertionError
    (or, when not `required`, what it returned last)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = check()
        if seen or time.monotonic() > deadline:
            if not seen and required:
                raise AssertionError(f"not seen within {timeout:.0f} s: {what}")
            return seen
        time.sleep(0.2)


def agreed(
    platform: Stack, kube: KubeClient, callers: Callers, project: str
) -> dict[str, dict[str, Any]] | None:
    """The listing once Helm, the records, the S3 Secrets and it agree (no ghost), else None:
    each listed service has its record and each record is listed; no Helm release or S3
    Secret lacks its record; running means deployed, failed comes with a reason."""
    found, listed = made(kube, project), listing(platform, callers, project)
    if set(listed) != found["records"]:
        return None
    if not (found["helm"] <= found["records"] and found["s3"] <= found["records"]):
        return None
    for release, line in listed.items():
        statuses = helm_statuses(kube, project, release)
        if line["status"] == "running" and statuses and statuses[-1][1] == "deployed":
            continue
        if line["status"] == "failed" and line.get("reason"):
            continue
        return None
    return listed


# -- launches -----------------------------------------------------------------------------------


def accept(platform: Stack, headers: dict[str, str], project: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "jupyter-python", "values": {}},
        headers=headers,
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def follow(platform: Stack, callers: Callers, accepted: dict[str, Any]) -> Follower:
    # Followed with the provider's token: its requests need no database.
    follower = Follower(platform.url + accepted["events_url"], bearer(callers.provider_token))
    follower.start()
    return follower


def ended(follower: Follower, started: float, release: str) -> dict[str, Any]:
    follower.join(max(0.0, LAUNCH_BOUND + SLACK - (time.monotonic() - started)))
    assert follower.ended is not None, f"{release} did not end within {LAUNCH_BOUND:g} s"
    assert follower.error is None, f"{release}: {follower.error!r}"
    last = follower.events[-1]
    assert last["phase"] in ("running", "failed"), (release, follower.events)
    if last["phase"] == "failed":
        assert last["message"], last
    took = follower.ended - started
    print(f"  {release}: {last['phase']} after {took:.1f} s: {last['message']}")
    assert took <= LAUNCH_BOUND + SLACK
    return last


def remove_all(platform: Stack, kube: KubeClient, callers: Callers, project: str) -> None:
    for release in listing(platform, callers, project):
        answer = httpx.delete(
            f"{platform.url}/api/projects/{project}/services/{release}",
            headers=bearer(callers.provider_token),
            timeout=60,
        )
        assert answer.status_code in (204, 404), answer.text
        assert eventually_clean(kube, project, release) == [], release
    assert made(kube, project) == {"records": set(), "helm": set(), "s3": set()}


# -- the outages --------------------------------------------------------------------------------


@contextmanager
def stopped(pg: LocalPostgres) -> Iterator[None]:
    pg.halt()
    try:
        yield
    finally:
        pg.resume()


@contextmanager
def frozen(pg: LocalPostgres) -> Iterator[None]:
    pg.freeze()
    try:
        yield
    finally:
        pg.thaw()


OUTAGES: dict[str, Callable[[LocalPostgres], AbstractContextManager[None]]] = {
    "stopped": stopped,
    "frozen": frozen,
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_launches_through_a_database_outage(
    platform: Stack,
    pg: LocalPostgres,
    kube: KubeClient,
    callers: Callers,
    project: str,
    outbox_namespace: str,
    outage: str,
) -> None:
    start = time.monotonic()
    token, provider = bearer(callers.api_token), bearer(callers.provider_token)
    assert agreed(platform, kube, callers, project) == {}, "a service is left from before"
    launches_before = {r["target"] for r in audit_rows(callers, "service.launch", project)}
    installs_before = {r["target"] for r in audit_rows(callers, "service.install", project)}
    needing, not_needing = needing_the_database(callers, project), not_needing_it(callers, project)
    # Connections in the pool, so requests meet pooled ones as well as new ones.
    warm = timed(platform, {f"warm {i}": needing["GET /api/me (API token)"] for i in range(4)})
    assert all(answer.status_code == 200 for answer, _ in warm.values()), warm
    # Launches accepted, then the outage at once, while they install.
    times: dict[str, float] = {}  # when each launch was accepted
    accepted: list[dict[str, Any]] = []
    for headers in (token, token, provider):
        accepted.append(accept(platform, headers, project))
        times[accepted[-1]["release"]] = time.monotonic()
    followers = {a["release"]: follow(platform, callers, a) for a in accepted}
    targets = {f"{project}/{a['release']}" for a in accepted}
    with OUTAGES[outage](pg):
        began = time.monotonic()
        unsettled = [r for r, f in followers.items() if f.ended is None]
        print(f"\nPostgreSQL {outage}; installing then: {len(unsettled)} of {len(followers)}")
        # Alone first (no other request holds the pool), then with all the others at once.
        refused = "POST launch (provider token)"
        alone = timed(platform, {refused: needing[refused]})
        report(f"PostgreSQL {outage}, a launch alone", alone)
        assert_unavailable(alone)
        during = timed(platform, {**needing, **not_needing})
        report(f"PostgreSQL {outage}, launches installing", during)
        assert_unavailable({name: during[name] for name in needing})
        assert_served({name: during[name] for name in not_needing})
        print("launches accepted before the outage:")
        last = {r: ended(f, times[r], r) for r, f in followers.items()}
        # An install that ended during the outage keeps its audit row in the cluster, once
        # the database refused it (within the operation bound). Not required: one that ended
        # as the outage began may have had its row taken by the database just before.
        wait_until(
            "the audit rows of the installs that ended in the outage, in the outbox",
            lambda: len(kept_rows(kube, outbox_namespace)) >= len(unsettled),
            BOUND + SLACK,
            required=False,
        )
        kept = {Row.of(c).target for c in kept_rows(kube, outbox_namespace)}
        print(f"audit rows in the outbox: {len(kept)}")
        assert kept, "no install ended during the outage"
        assert kept <= targets, (kept, targets)  # none of a refused launch
        again = timed(platform, needing)
        report(f"PostgreSQL still {outage}", again)
        assert_unavailable(again)
        # The launches refused left nothing: no record, no Helm release, no S3 Secret.
        # (A launch that failed was rolled back: its objects are gone too.)
        found = made(kube, project)
        assert found["records"] <= set(followers), found
        assert found["helm"] <= found["records"], found
        assert found["s3"] == found["records"], found
        print(f"outage lasted {time.monotonic() - began:.1f} s")

    wait_until_served(platform, callers, f"after the database was {outage}")
    after = timed(platform, needing)
    report("database back, same requests", after)
    for name, (answer, _) in after.items():
        assert answer.status_code in (200, 202), f"{name}: {answer.status_code} {answer.text}"
    relaunched = [a.json() for n, (a, _) in after.items() if n.startswith("POST launch")]
    times |= {a["release"]: time.monotonic() for a in relaunched}
    more = {a["release"]: follow(platform, callers, a) for a in relaunched}

    # The outbox is delivered by the leader (every DELIVERY s) and then empty.
    delivered = wait_until(
        "the install rows of the outage in the audit log",
        lambda: (
            targets <= {r["target"] for r in audit_rows(callers, "service.install", project)}
            and not kept_rows(kube, outbox_namespace)
        ),
        DELIVERY + BOUND + SLACK,
    )
    assert delivered
    print("launches accepted after it:")
    last |= {r: ended(f, times[r], r) for r, f in more.items()}
    every = {f"{project}/{r}" for r in last}

    def installs() -> list[dict[str, Any]]:
        rows = audit_rows(callers, "service.install", project)
        return [r for r in rows if r["target"] not in installs_before]

    # One row per install, saying how it ended; none for the refused launches.
    wait_until("every install's row", lambda: {r["target"] for r in installs()} >= every, SLACK)
    by_target = {r["target"]: r for r in installs()}
    assert len(installs()) == len(by_target), installs()
    assert set(by_target) == every, (set(by_target), every)
    for release, event in last.items():
        outcome = "success" if event["phase"] == "running" else "failure"
        assert by_target[f"{project}/{release}"]["outcome"] == outcome, by_target
    launches = {r["target"] for r in audit_rows(callers, "service.launch", project)}
    assert launches - launches_before == every

    line = wait_until(
        "Helm, the records and the listing agree",
        lambda: agreed(platform, kube, callers, project) or None,
        SLACK * 4,
    )
    print(f"listed: { {r: s['status'] for r, s in line.items()} }")
    assert set(line) <= set(last)
    for release, event in last.items():
        if event["phase"] == "running":
            assert line[release]["status"] == "running", line
    remove_all(platform, kube, callers, project)
    print(f"{outage}: {time.monotonic() - start:.1f} s")


# Last, over the whole module's access log and metrics: no 5xx but 503s.
test_no_request_answered_500 = database_faults.test_no_request_answered_500
