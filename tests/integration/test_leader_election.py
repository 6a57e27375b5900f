"""Leader election on a real API server: electors with different identities on one Lease in a
fresh namespace; a leader that dies, one that leaves cleanly, one that loses the API server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onyxia_py.errors import Conflict
from onyxia_py.kube import KubeClient, KubeLeases, LeaseRecord
from onyxia_py.leadership.core import Elector, Timing
from onyxia_py.settings import KubernetesSettings

from .tcp_proxy import TcpProxy, kubeconfig_through, upstream_of

# Short, so the tests take seconds; the same ratios as the defaults (15 s / 10 s / 2 s).
TIMING = Timing(lease_duration_seconds=3, renew_deadline_seconds=2.0, retry_period_seconds=0.3)
SLACK = 1.0  # a loaded machine's scheduling and API latency


class Job:
    """Records whether it runs."""

    def __init__(self) -> None:
        self.running = False

    async def start(self) -> None:
        self.running = True

    async def stop(self) -> None:
        self.running = False


async def eventually(check: Callable[[], bool], seconds: float) -> float:
    """Wait until `check()` holds; the time it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


Pairs = list[tuple[Elector, Job]]


@asynccontextmanager
async def electors(clients: list[KubeClient], namespace: str) -> AsyncIterator[Pairs]:
    """One elector per client, each with its own identity, on Lease `leader` in `namespace`."""
    pairs = [
        (
            Elector(KubeLeases(c, namespace, timeout_seconds=5), "leader", f"r{n}", [job], TIMING),
            job,
        )
        for n, (c, job) in enumerate((c, Job()) for c in clients)
    ]
    for elector, _ in pairs:
        await elector.start()
    try:
        yield pairs
    finally:
        for elector, _ in pairs:
            await elector.stop()


def leaders(pairs: Pairs) -> list[Elector]:
    return [elector for elector, job in pairs if job.running]


async def test_the_adapter_refuses_a_stale_write(kube: KubeClient, namespace: str) -> None:
    leases = KubeLeases(kube, namespace, timeout_seconds=5)
    assert await leases.get("leader") is None
    made = await leases.create("leader", LeaseRecord(holder="a", duration_seconds=3))
    with pytest.raises(Conflict):
        await leases.create("leader", LeaseRecord(holder="b", duration_seconds=3))
    now = datetime.now(UTC)
    renewed = await leases.update(
        "leader", LeaseRecord("a", 3, renewed_at=now, resource_version=made.resource_version)
    )
    assert renewed.renewed_at == now
    assert renewed.resource_version != made.resource_version
    with pytest.raises(Conflict):  # b read before a's renewal: its write must not win
        await leases.update("leader", LeaseRecord("b", 3, resource_version=made.resource_version))
    assert (await leases.get("leader")) == renewed


async def test_exactly_one_of_three_leads_and_the_lease_says_who(
    kube: KubeClient, namespace: str
) -> None:
    async with electors([kube, kube, kube], namespace) as pairs:
        await eventually(lambda: len(leaders(pairs)) == 1, 5)
        await asyncio.sleep(TIMING.lease_duration_seconds + 1)  # renewals keep it
        (leader,) = leaders(pairs)
        lease = await kube.get("Lease", "leader", namespace)
        assert lease["spec"]["holderIdentity"] == leader.identity
        assert lease["spec"]["leaseDurationSeconds"] == 3
        assert lease["spec"]["renewTime"].endswith("Z")


async def test_a_dead_leader_is_replaced_within_the_bound(kube: KubeClient, namespace: str) -> None:
    async with electors([kube, kube, kube], namespace) as pairs:
        await eventually(lambda: len(leaders(pairs)) == 1, 5)
        (dead,) = leaders(pairs)
        await dead.stop(release=False)  # as if the process died: the Lease stays its
        assert (await kube.get("Lease", "leader", namespace))["spec"]["holderIdentity"] == (
            dead.identity
        )
        bound = TIMING.lease_duration_seconds + 2 * 1.2 * TIMING.retry_period_seconds
        took = await eventually(lambda: len(leaders(pairs)) == 1, bound + SLACK)
        assert took >= TIMING.lease_duration_seconds - 2 * TIMING.retry_period_seconds
        (successor,) = leaders(pairs)
        lease = await kube.get("Lease", "leader", namespace)
        assert lease["spec"]["holderIdentity"] == successor.identity != dead.identity
        assert lease["spec"]["leaseTransitions"] == 1


async def test_a_released_lease_is_taken_at_once(kube: KubeClient, namespace: str) -> None:
    async with electors([kube, kube], namespace) as pairs:
        await eventually(lambda: len(leaders(pairs)) == 1, 5)
        await leaders(pairs)[0].stop()
        took = await eventually(lambda: len(leaders(pairs)) == 1, 5)
        assert took < 1.2 * TIMING.retry_period_seconds + SLACK < TIMING.lease_duration_seconds


@pytest.fixture
def proxy(kubeconfig: Path) -> Iterator[TcpProxy]:
    """A breakable path to the API server."""
    forwarder = TcpProxy(upstream_of(kubeconfig))
    yield forwarder
    forwarder.close()


@pytest.mark.parametrize("outage", ["refuse", "hang"])
async def test_the_leader_stops_its_jobs_when_the_api_server_is_gone(
    kube: KubeClient, kubeconfig: Path, namespace: str, proxy: TcpProxy, tmp_path: Path, outage: str
) -> None:
    through = kubeconfig_through(proxy, kubeconfig, tmp_path / "kubeconfig")
    cut_off = KubeClient(KubernetesSettings(kubeconfig=through))
    try:
        async with electors([cut_off], namespace) as pairs:
            ((elector, job),) = pairs
            await eventually(lambda: job.running, 5)
            getattr(proxy, outage)()
            # Stopped by the renew deadline, however long a call would hang.
            took = await eventually(lambda: not job.running, TIMING.renew_deadline_seconds + SLACK)
            assert not elector.leading
            assert took >= TIMING.renew_deadline_seconds - TIMING.retry_period_seconds - 0.1
            # Nobody else took it meanwhile: the same replica leads again once it gets through.
            proxy.heal()
            await eventually(lambda: job.running, TIMING.lease_duration_seconds + SLACK + 5)
    finally:
        cut_off.close()
