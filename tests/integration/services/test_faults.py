"""Every launch ends and nothing becomes a ghost, on the local control plane with real Helm:
an unexpected error inside an install still ends the launch (failed, rolled back); a failed
uninstall keeps the service listed with the reason; the reconciler ends what an interruption
left behind (a release left pending, a record without a release, a release without a record)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD, default_users
from onyxia_py.api.deps import Platform
from onyxia_py.errors import NotFound, OperationFailed
from onyxia_py.helm import SdkHelmEngine
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient
from onyxia_py.services import objects
from onyxia_py.services.models import ServiceMeta
from onyxia_py.services.reconciler import INTERRUPTED, NEVER_INSTALLED
from onyxia_py.settings import CatalogSettings, HelmSettings, KubernetesSettings, ProjectSettings

from ...support import wait_for_catalogs
from ..oidc_stack import Stack, bearer, browser_login, stack
from .helpers import CHARTS, eventually_clean, leftovers, listed_until, phases

HELLO = Path(__file__).parents[2] / "fixtures" / "charts" / "hello"
HELM_TIMEOUT, CLEANUP = 15, 1.0  # the launch bound: 16 s
ROOM = 3  # pods alice's project has room for


@pytest.fixture(scope="module")
def faulty(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    tag = secrets.token_hex(3)
    tmp = tmp_path_factory.mktemp("faults")
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"f{tag}-",
            group_namespace_prefix=f"fg{tag}-",
            user_quota={"requests.cpu": "8", "requests.memory": "32Gi", "count/pods": str(ROOM)},
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": HELM_TIMEOUT},
        "services": {
            "launch_cleanup_seconds": CLEANUP,
            "reconcile_interval_seconds": 1,
            "reconcile_sweep_seconds": 1,  # every project at each pass
        },
    }
    with stack(tmp, settings=overrides, users=default_users()) as running:
        wait_for_catalogs(httpx.get, running.url)
        # A browser login brings alice's project up (namespace, RoleBinding).
        _, done = browser_login(running, "alice", ALICE_PASSWORD)
        assert done.status_code == 303
        yield running
    with contextlib.suppress(NotFound):
        kube.request_sync("DELETE", f"/api/v1/namespaces/f{tag}-alice", body={})


def platform_of(s: Stack) -> Platform:
    platform: Platform = s.app.app.state.platform
    return platform


@pytest.fixture(scope="module")
def alice(faulty: Stack) -> dict[str, str]:
    return bearer(faulty.tokens("alice", ALICE_PASSWORD)["access_token"])


@pytest.fixture(scope="module")
def project(faulty: Stack) -> str:
    return faulty.settings.projects.user_namespace_prefix + "alice"


class Broken:
    """A Helm engine whose install (or uninstall) fails the way our own bug or Helm would."""

    def __init__(
        self, inner: Any, *, install: bool = False, uninstall: bool = False, hold: bool = False
    ) -> None:
        self.inner, self.break_install, self.break_uninstall = inner, install, uninstall
        self.hold = hold

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def install(self, *args: Any, **kwargs: Any) -> Any:
        if self.break_install:
            raise RuntimeError("a bug in our own code")
        if self.hold:
            # Helm waiting for pods that take long: it holds the release's lock meanwhile,
            # until the install is cancelled.
            stopped = asyncio.Event()
            kwargs["cancellation"].on_cancel(stopped.set)
            locks = self.inner._locks
            hold = locks.hold(
                kwargs["namespace"], kwargs["release"], "install", kwargs["cancellation"]
            )
            async with hold:
                await stopped.wait()
            raise OperationFailed("install cancelled")
        return await self.inner.install(*args, **kwargs)

    async def uninstall(self, *args: Any, **kwargs: Any) -> Any:
        if self.break_uninstall:
            raise OperationFailed("the API server refused the uninstall")
        return await self.inner.uninstall(*args, **kwargs)


@contextlib.contextmanager
def broken_helm(s: Stack, **how: bool) -> Iterator[None]:
    launcher = platform_of(s).launcher
    real = launcher.helm
    launcher.helm = Broken(real, **how)
    try:
        yield
    finally:
        launcher.helm = real


def launch(s: Stack, headers: dict[str, str], project: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{s.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "rstudio", "values": {"persistence": {"enabled": False}}},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    accepted: dict[str, Any] = answer.json()
    return accepted


def test_an_unexpected_error_in_the_install_still_ends_the_launch(
    faulty: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    with broken_helm(faulty, install=True):
        accepted = launch(faulty, alice, project)
        started = time.monotonic()
        seen = phases(faulty, alice, accepted["events_url"])
    assert time.monotonic() - started < HELM_TIMEOUT + CLEANUP
    last = seen[-1]
    assert last["phase"] == "failed"
    assert "internal error (RuntimeError)" in last["message"]
    assert "everything it created was removed" in last["message"]
    assert eventually_clean(kube, project, accepted["release"]) == []


def test_a_failed_uninstall_keeps_the_service_listed_with_the_reason(
    faulty: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    accepted = launch(faulty, alice, project)
    release = accepted["release"]
    assert phases(faulty, alice, accepted["events_url"])[-1]["phase"] == "running"
    url = f"{faulty.url}/api/projects/{project}/services/{release}"
    with broken_helm(faulty, uninstall=True):
        refused = httpx.delete(url, headers=alice, timeout=60)
        assert refused.status_code == 502, refused.text
        assert "stays listed" in refused.json()["detail"]
    line = listed_until(faulty, alice, project, release, "failed")
    assert "removal failed: the API server refused the uninstall" in line["reason"]
    # Nothing was said removed that is not: the release and its record are still there.
    assert any(item.startswith("secrets/sh.helm") for item in leftovers(kube, project, release))
    assert httpx.delete(url, headers=alice, timeout=60).status_code == 204
    assert eventually_clean(kube, project, release) == []


def _helm(kube_settings: KubernetesSettings) -> SdkHelmEngine:
    return SdkHelmEngine(HelmSettings(), kubeconfig=kube_settings.kubeconfig)


def test_the_reconciler_ends_what_an_interruption_left(
    faulty: Stack,
    alice: dict[str, str],
    project: str,
    kube: KubeClient,
    kube_settings: KubernetesSettings,
) -> None:
    as_alice = Impersonation("alice")
    helm = _helm(kube_settings)
    ghost, pending, orphan = (f"hello-{secrets.token_hex(3)}" for _ in range(3))
    # A ghost: a release with no record (the record's write was lost).
    asyncio.run(
        helm.install(HELLO, release=ghost, namespace=project, values={}, as_=as_alice, wait=False)
    )
    # An install cut off: Helm's record says pending-install, and no one is installing it.
    asyncio.run(
        helm.install(HELLO, release=pending, namespace=project, values={}, as_=as_alice, wait=False)
    )
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
    for release in (pending, orphan):
        meta = ServiceMeta(release, project, "ide", "hello", "0.1.0", "alice", release, False, old)
        kube.request_sync(
            "POST", f"/api/v1/namespaces/{project}/secrets", body=objects.meta_secret(meta)
        )
    [helm_secret] = kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{project}/secrets",
        query={"labelSelector": f"owner=helm,name={pending}"},
    )["items"]
    kube.request_sync(
        "PATCH",
        f"/api/v1/namespaces/{project}/secrets/{helm_secret['metadata']['name']}",
        body={"metadata": {"labels": {"status": "pending-install"}}},
        content_type="application/merge-patch+json",
    )
    # Within the launch bound and a pass or two, each has converged.
    # (Its pods are refused by the project's Pod Security level: it stays starting.)
    adopted = listed_until(faulty, alice, project, ghost, "starting")
    assert (adopted["chart"], adopted["owner"]) == ("hello", "alice")
    interrupted = listed_until(faulty, alice, project, pending, "failed")
    assert INTERRUPTED in interrupted["reason"]
    assert "everything it created was removed" in interrupted["reason"]
    assert not [i for i in leftovers(kube, project, pending) if "sh.helm" in i]
    never = listed_until(faulty, alice, project, orphan, "failed")
    assert never["reason"] == NEVER_INSTALLED
    audit = httpx.get(f"{faulty.url}/api/admin/audit", headers=alice).json()
    actions = {(e["action"], e["target"].rsplit("/", 1)[1]) for e in audit}
    assert ("service.reconcile.adopted", ghost) in actions
    assert ("service.reconcile.rolled-back", pending) in actions
    assert ("service.reconcile.marked-failed", orphan) in actions
    # Each is listed and deletable by its owner, and deleting leaves nothing.
    for release in (ghost, pending, orphan):
        url = f"{faulty.url}/api/projects/{project}/services/{release}"
        assert httpx.delete(url, headers=alice, timeout=60).status_code == 204
        assert eventually_clean(kube, project, release) == []


def test_a_delete_during_the_install_stops_it_instead_of_waiting(
    faulty: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    with broken_helm(faulty, hold=True):
        accepted = launch(faulty, alice, project)
        release = accepted["release"]
        url = f"{faulty.url}/api/projects/{project}/services/{release}"
        listed_until(faulty, alice, project, release, "starting")
        started = time.monotonic()
        assert httpx.delete(url, headers=alice, timeout=60).status_code == 204
        took = time.monotonic() - started
        last = phases(faulty, alice, accepted["events_url"])[-1]
    assert took < HELM_TIMEOUT / 2, f"the DELETE waited {took:.1f}s for the install"
    assert (last["phase"], last["message"]) == ("failed", "deleted before it was ready")
    assert eventually_clean(kube, project, release) == []


def test_concurrent_launches_past_the_quota_are_refused_at_the_post(
    faulty: Stack, alice: dict[str, str], project: str, kube: KubeClient
) -> None:
    def post(_: int) -> httpx.Response:
        return httpx.post(
            f"{faulty.url}/api/projects/{project}/services",
            json={
                "catalog": "ide",
                "chart": "rstudio",
                "values": {"persistence": {"enabled": False}},
            },
            headers=alice,
            timeout=60,
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    accepted = [a.json() for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert len(accepted) == ROOM, [a.status_code for a in answers]
    for answer in refused:
        assert answer.status_code == 403, answer.text
        assert answer.json()["type"].endswith("quota-exceeded"), answer.text
        assert "count/pods" in answer.json()["detail"]
    # Every launch that got its 202 runs: none fails later on the quota.
    for launch_ in accepted:
        assert phases(faulty, alice, launch_["events_url"])[-1]["phase"] == "running"
    for launch_ in accepted:
        url = f"{faulty.url}/api/projects/{project}/services/{launch_['release']}"
        assert httpx.delete(url, headers=alice, timeout=60).status_code == 204
    for launch_ in accepted:
        assert eventually_clean(kube, project, launch_["release"]) == []
