"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's timing semantics.

Two replicas, one active. Every replica watches (kopf) and keeps its caches warm; only the one
holding the Lease reconciles. Timing (``Timing``, seconds, client-go's defaults 15/10/2):

- a **standby** tries every ``retry_period`` (jittered) to read the Lease. It measures the
  holder's lease on its *own* monotonic clock, from the moment it last *saw the record change*
  (never from the ``renewTime`` written by another machine's clock), and takes the Lease only when
  ``lease_duration`` has passed since then, or at once when it is free (no holder, or released);
  the take is a ``resourceVersion``-guarded write, so of two standbys one wins (409 for the other).
- the **leader** renews every ``retry_period``. Its right to act ends ``renew_deadline`` after the
  *start* of its last successful renew (the write landed after that start, so the standby's
  observation, which comes after the write, is later still). At that moment it stops acting,
  whatever its requests are doing: a timer fires ``on_stopped``, and ``may_act()``, which
  ``Kube`` checks before every write, turns False on the clock alone (so a process that was
  paused and resumes cannot send one more write before the timer runs).
- hence a standby can start no earlier than ``lease_duration - renew_deadline`` (5 s by default)
  after the old leader stopped; ``Timing`` refuses settings without that margin.
- a clean stop (SIGTERM) releases the Lease (empty holder), so the standby takes over at its next try.

``clock``, ``wall`` and ``jitter`` are injected, so tests drive the timing with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)
JITTER = 1.2  # client-go's JitterFactor: a retry waits retry_period * (1 + U[0, 0.2))


class TimingError(ValueError):
    """Lease timings that cannot fence: the message names the setting."""


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            if not getattr(self, name) > 0:
                raise TimingError(f"{name}={getattr(self, name)}: expected a number of seconds > 0")
        if not self.lease_duration > self.renew_deadline:
            raise TimingError(
                f"renew_deadline={self.renew_deadline} must be less than lease_duration={self.lease_duration}: "
                "a leader stops acting at renew_deadline, a standby may start at lease_duration"
            )
        if not self.renew_deadline > JITTER * self.retry_period:
            raise TimingError(
                f"retry_period={self.retry_period} must be less than renew_deadline/{JITTER} "
                f"({self.renew_deadline / JITTER:.2f}): a leader must get more than one try to renew"
            )


class Conflict(Exception):
    """The Lease changed (409) or exists already: someone else wrote first."""


class LeaseStore(Protocol):
    """The one Lease object (``leadership`` adapts ``kube.Kube`` to it)."""

    async def get(self) -> dict[str, Any] | None:
        """The Lease, or None when there is none."""

    async def write(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create (no resourceVersion in the body) or replace (guarded by it); ``Conflict`` on a 409."""


def micro_time(when: datetime) -> str:
    """A Kubernetes MicroTime."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


Callback = Callable[[], None]


class Elector:
    """Campaigns for the Lease ``name`` in ``namespace`` as ``identity``; see the module docstring."""

    def __init__(
        self,
        store: LeaseStore,
        namespace: str,
        name: str,
        identity: str,
        timing: Timing,
        on_started: Callback,
        on_stopped: Callback,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store, self.namespace, self.name, self.identity = store, namespace, name, identity
        self.timing, self.on_started, self.on_stopped = timing, on_started, on_stopped
        self.clock, self.wall, self.jitter = clock, wall, jitter
        self.leading = False
        self._valid_until = 0.0  # the clock value at which the leader must have stopped
        self._seen: tuple[Any, ...] | None = None  # the record last observed (holder, renew, transitions)
        self._seen_at = 0.0  # when it was first observed, on our clock
        self._timer: asyncio.TimerHandle | None = None

    def may_act(self) -> bool:
        """True while this replica holds the Lease and its renew deadline has not passed."""
        return self.leading and self.clock() < self._valid_until

    def next_wait(self) -> float:
        return self.timing.retry_period * (1 + (JITTER - 1) * self.jitter())

    async def run(self) -> None:
        """Campaign and renew until cancelled."""
        log.info("leader election: %s campaigning for Lease %s/%s", self.identity, self.namespace, self.name)
        while True:
            await self.tick()
            await asyncio.sleep(self.next_wait())

    async def tick(self) -> None:
        """One try: renew when leading, else acquire when the Lease is free or expired."""
        started = self.clock()
        try:
            record = await self.store.get()
            body = self._claim(record, started)
            if body is None:
                return
            await self.store.write(body)
        except Conflict:
            log.debug("leader election: Lease %s/%s changed under us", self.namespace, self.name)
            self._check_deadline()
            return
        except Exception as exc:  # the API is what fails here; the deadline decides what that means
            log.warning(
                "leader election: %s could not reach Lease %s/%s: %s", self.identity, self.namespace, self.name, exc
            )
            self._check_deadline()
            return
        self._renewed(started)

    def _claim(self, record: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
        """The Lease body to write, or None when another holder's lease has not expired."""
        spec = dict((record or {}).get("spec") or {})
        holder = str(spec.get("holderIdentity") or "")
        seen = (holder, spec.get("renewTime"), spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        if seen != self._seen:
            self._seen, self._seen_at = seen, now
        if holder != self.identity:
            if self.leading:
                self._stop(f"Lease {self.namespace}/{self.name} is held by {holder or 'nobody'}")
            duration = float(spec.get("leaseDurationSeconds") or self.timing.lease_duration)
            if holder and now < self._seen_at + duration:
                self._check_deadline()
                return None
        stamp = micro_time(self.wall())
        transitions = int(spec.get("leaseTransitions") or 0)
        new_spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
            "acquireTime": spec.get("acquireTime") if holder == self.identity else stamp,
            "renewTime": stamp,
            "leaseTransitions": transitions if holder == self.identity or not holder else transitions + 1,
        }
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record is not None:
            metadata["resourceVersion"] = record["metadata"]["resourceVersion"]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": new_spec}

    def _renewed(self, started: float) -> None:
        """A write that started at ``started`` made us the holder: act until started + renew_deadline."""
        self._valid_until = started + self.timing.renew_deadline
        if self.clock() >= self._valid_until:  # the write itself took the whole deadline
            self._check_deadline()
            return
        self._arm()
        if not self.leading:
            self.leading = True
            log.info(
                "leader election: %s acquired Lease %s/%s and starts acting", self.identity, self.namespace, self.name
            )
            self.on_started()

    def _arm(self) -> None:
        """The stop does not wait for a request to return: a timer ends the leadership at the deadline."""
        if self._timer is not None:
            self._timer.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(0.0, self._valid_until - self.clock()), self._check_deadline)

    def _check_deadline(self) -> None:
        if self.leading and self.clock() >= self._valid_until:
            self._stop(f"no renew of Lease {self.namespace}/{self.name} within {self.timing.renew_deadline}s")

    def _stop(self, why: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.leading:
            return
        self.leading = False
        self._valid_until = 0.0
        log.warning("leader election: %s stops acting: %s", self.identity, why)
        self.on_stopped()

    async def release(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Clean stop: stop acting (``before`` waits for work in flight), then free the Lease."""
        was_leading = self.leading
        self._stop("shutting down")
        if before is not None:
            await before()
        if not was_leading:
            return
        try:
            record = await self.store.get()
            spec = dict((record or {}).get("spec") or {})
            if record is None or spec.get("holderIdentity") != self.identity:
                return
            spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=micro_time(self.wall()))
            await self.store.write({**record, "spec": spec})
            log.info("leader election: %s released Lease %s/%s", self.identity, self.namespace, self.name)
        except Exception as exc:  # the standby then waits out the lease instead
            log.warning("leader election: Lease %s/%s not released: %s", self.namespace, self.name, exc)
