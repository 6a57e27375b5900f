"""Leader election: of the replicas that share a Lease, one runs the background jobs.

As client-go's leaderelection does: a candidate takes the Lease when there is none, when it was
released, or when it has not changed for its whole duration as seen on the candidate's own clock
(clocks that disagree do not matter, only their rates). The leader renews it every retry period;
when it could not for the renew deadline it stops its jobs, before anyone may take over (the
lease duration is longer). On a clean stop the leader releases the Lease, so a successor takes
over at its next try instead of waiting out the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

from onyxia_py.errors import Conflict, Forbidden, OnyxiaError
from onyxia_py.kube import LeaseRecord

log = logging.getLogger(__name__)


class Job(Protocol):
    """A background job that only the leader runs."""

    async def start(self) -> None:
        """Start working in the background."""
        ...

    async def stop(self) -> None:
        """Stop working; return once stopped."""
        ...


class Leases(Protocol):
    """Where the Lease is kept (the Kubernetes API, as the platform)."""

    namespace: str

    async def get(self, name: str) -> LeaseRecord | None:
        """The Lease, or None if there is none."""
        ...

    async def create(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """Create it; Conflict if it exists."""
        ...

    async def update(self, name: str, record: LeaseRecord) -> LeaseRecord:
        """Replace it if still at `record.resource_version`; Conflict otherwise."""
        ...


class Leadership(Protocol):
    """Runs the jobs while this process leads: an Elector, or Unelected when election is off."""

    @property
    def leading(self) -> bool:
        """Whether this process runs the jobs now."""
        ...

    async def start(self) -> None:
        """Begin (the jobs start once this process leads)."""
        ...

    async def stop(self) -> None:
        """Stop the jobs and give up leadership."""
        ...


@dataclass(frozen=True)
class Timing:
    """How long a Lease lasts unrenewed, when the leader gives up, how often everyone tries."""

    lease_duration_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0


def default_identity() -> str:
    """The host name (a pod's name) and a random suffix: unique even when a name is reused."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


class _Verdict(Enum):
    HELD = "held"  # the Lease is ours now
    OTHER = "other"  # someone else holds a valid Lease
    UNKNOWN = "unknown"  # the Lease could not be read or written


class JobGroup:
    """Starts and stops a list of jobs; one job failing never keeps the others from running."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = tuple(jobs)
        self.running = False

    def names(self) -> str:
        """The jobs' names, for log lines."""
        return ", ".join(type(job).__name__ for job in self.jobs) or "no jobs"

    async def start(self) -> None:
        """Start every job, in order."""
        self.running = True
        for job in self.jobs:
            try:
                await job.start()
            except Exception:  # a job's bug must not stop leader election or the other jobs
                log.exception("background job %s failed to start", type(job).__name__)

    async def stop(self) -> None:
        """Stop every job, in reverse order."""
        self.running = False
        for job in reversed(self.jobs):
            try:
                await job.stop()
            except Exception:  # keep stopping the others
                log.exception("background job %s failed to stop", type(job).__name__)


class Unelected:
    """leader_election.enabled false: the jobs run from start to stop, no Lease asked."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self._jobs = JobGroup(jobs)

    @property
    def leading(self) -> bool:
        """True while the jobs run."""
        return self._jobs.running

    async def start(self) -> None:
        """Start the jobs now."""
        log.info("leader election is off: this process runs %s", self._jobs.names())
        await self._jobs.start()

    async def stop(self) -> None:
        """Stop the jobs."""
        await self._jobs.stop()


class Elector:
    """Competes for one Lease; runs the jobs while it holds it."""

    def __init__(
        self,
        leases: Leases,
        name: str,
        identity: str,
        jobs: Sequence[Job],
        timing: Timing | None = None,
    ) -> None:
        self._leases = leases
        self.name = name
        self.identity = identity
        self._jobs = JobGroup(jobs)
        self._timing = timing or Timing()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._problem: str | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def leading(self) -> bool:
        """Whether this process holds the Lease and runs the jobs."""
        return self._jobs.running

    @property
    def holder(self) -> str | None:
        """Who held the Lease when this process last read it ("" released, None unknown)."""
        return self._observed.holder if self._observed is not None else None

    @property
    def _where(self) -> str:
        return f"{self._leases.namespace}/{self.name}"

    async def start(self) -> None:
        """Compete for the Lease in the background."""
        self._stopping.clear()
        log.info(
            "leader election: %s competes for Lease %s; %s run once it leads",
            self.identity,
            self._where,
            self._jobs.names(),
        )
        self._task = asyncio.create_task(self._run(), name=f"leader-election-{self.name}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop competing and stop the jobs; release the Lease unless `release` is false (as
        when the process dies: a successor then waits for the Lease to expire)."""
        self._stopping.set()
        if self._task is not None:
            # Let a call in flight finish, so the Lease is in a known state before releasing.
            try:
                await asyncio.wait_for(
                    asyncio.shield(self._task), self._timing.renew_deadline_seconds
                )
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._jobs.running:
            log.info("leader election: %s stops %s", self.identity, self._jobs.names())
            await self._jobs.stop()
        if release:
            await self._release()

    async def _run(self) -> None:
        timing = self._timing
        while not self._stopping.is_set():
            verdict = await self._attempt()
            if verdict is _Verdict.HELD:
                self._renewed_at = time.monotonic()
                if not self._jobs.running and not self._stopping.is_set():
                    log.info(
                        "leader election: %s leads (Lease %s): starting %s",
                        self.identity,
                        self._where,
                        self._jobs.names(),
                    )
                    await self._jobs.start()
            elif self._jobs.running:
                late = time.monotonic() - self._renewed_at >= timing.renew_deadline_seconds
                if verdict is _Verdict.OTHER or late:
                    log.warning(
                        "leader election: %s lost Lease %s (%s): stopping %s",
                        self.identity,
                        self._where,
                        f"now held by {self.holder}"
                        if verdict is _Verdict.OTHER
                        else f"not renewed for {timing.renew_deadline_seconds:g} s",
                        self._jobs.names(),
                    )
                    await self._jobs.stop()
            await self._pause()

    async def _pause(self) -> None:
        period = self._timing.retry_period_seconds
        if not self._jobs.running:
            # Candidates spread out their tries (jitter, not a secret).
            period *= random.uniform(1.0, 1.2)  # noqa: S311
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), period)

    async def _attempt(self) -> _Verdict:
        if not self._jobs.running:
            return await self._try()
        # A leader's renewal must not outlive its deadline, however slow the API server is.
        remaining = self._renewed_at + self._timing.renew_deadline_seconds - time.monotonic()
        try:
            return await asyncio.wait_for(self._try(), max(remaining, 0.01))
        except TimeoutError:
            self._report(f"no answer within the remaining {max(remaining, 0):.1f} s")
            return _Verdict.UNKNOWN

    async def _try(self) -> _Verdict:
        """Take or renew the Lease if it is free, expired or ours; say who holds it."""
        try:
            current = await self._leases.get(self.name)
            now = datetime.now(UTC)
            if current is None:
                mine = LeaseRecord(
                    holder=self.identity,
                    duration_seconds=self._timing.lease_duration_seconds,
                    acquired_at=now,
                    renewed_at=now,
                )
                self._see(await self._leases.create(self.name, mine))
            else:
                self._see(current)
                if current.holder not in ("", self.identity) and not self._expired(current):
                    self._recovered()
                    return _Verdict.OTHER
                taken = current.holder != self.identity
                mine = LeaseRecord(
                    holder=self.identity,
                    duration_seconds=self._timing.lease_duration_seconds,
                    acquired_at=now if taken else current.acquired_at,
                    renewed_at=now,
                    transitions=current.transitions + (1 if taken else 0),
                    resource_version=current.resource_version,
                )
                self._see(await self._leases.update(self.name, mine))
        except Conflict:
            # Someone wrote the Lease between our read and our write: the next read says who.
            return _Verdict.UNKNOWN
        except OnyxiaError as exc:
            self._report(exc.detail, forbidden=isinstance(exc, Forbidden))
            return _Verdict.UNKNOWN
        self._recovered()
        return _Verdict.HELD

    def _see(self, record: LeaseRecord) -> None:
        # Expiry is measured from when this process saw the Lease change, on its own clock.
        if self._observed is None or record.resource_version != self._observed.resource_version:
            self._observed_at = time.monotonic()
        self._observed = record

    def _expired(self, record: LeaseRecord) -> bool:
        return time.monotonic() - self._observed_at >= record.duration_seconds

    def _report(self, problem: str, *, forbidden: bool = False) -> None:
        if problem == self._problem:
            return  # once per distinct problem, not every retry period
        self._problem = problem
        hint = (
            f" (the platform needs get, create and update on leases in {self._leases.namespace})"
            if forbidden
            else ""
        )
        log.warning(
            "leader election: cannot use Lease %s: %s%s; %s",
            self._where,
            problem,
            hint,
            "the leader stops its jobs if this lasts"
            if self._jobs.running
            else f"{self._jobs.names()} wait until this process leads",
        )

    def _recovered(self) -> None:
        if self._problem is not None:
            log.info("leader election: Lease %s reachable again", self._where)
            self._problem = None

    async def _release(self) -> None:
        """Mark the Lease free if this process still holds it."""

        async def release() -> None:
            current = await self._leases.get(self.name)
            if current is None or current.holder != self.identity:
                return
            now = datetime.now(UTC)
            freed = LeaseRecord(
                holder="",
                duration_seconds=1,
                acquired_at=now,
                renewed_at=now,
                transitions=current.transitions,
                resource_version=current.resource_version,
            )
            self._see(await self._leases.update(self.name, freed))
            log.info("leader election: %s released Lease %s", self.identity, self._where)

        if self._observed is None or self._observed.holder != self.identity:
            return
        try:
            await asyncio.wait_for(release(), self._timing.renew_deadline_seconds)
        except (OnyxiaError, TimeoutError) as exc:
            detail = exc.detail if isinstance(exc, OnyxiaError) else "no answer"
            log.warning(
                "leader election: could not release Lease %s (%s): a successor waits up to %d s",
                self._where,
                detail,
                self._timing.lease_duration_seconds,
            )
